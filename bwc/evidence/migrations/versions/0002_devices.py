"""Devices: the checkout ledger (who held which camera when) and measured clock offsets.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("officer_id", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False, server_default="cli"),
        sa.UniqueConstraint("officer_id", "device_id", "start", name="uq_assignment"),
    )
    op.create_index("ix_assignment_device", "assignment", ["device_id", "start"])
    op.create_index("ix_assignment_officer", "assignment", ["officer_id", "start"])
    op.create_table(
        "device_clock",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(128), nullable=False),
        # device time minus true time, in milliseconds (+12 s: the device runs 12 s ahead)
        sa.Column("offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
    )
    op.create_index("ix_device_clock_device", "device_clock", ["device_id", "measured_at"])


def downgrade() -> None:
    op.drop_table("device_clock")
    op.drop_table("assignment")
