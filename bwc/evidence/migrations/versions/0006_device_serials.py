"""Docking: the device id each camera's USB serial was first seen with.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_serial",
        sa.Column("usb_serial", sa.String(128), primary_key=True),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("dock_session", sa.Integer(), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_device_serial_device_id", "device_serial", ["device_id"])


def downgrade() -> None:
    op.drop_table("device_serial")
