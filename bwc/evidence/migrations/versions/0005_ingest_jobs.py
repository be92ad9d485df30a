"""Docking: dock sessions and the crash-safe per-file ingest jobs.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dock_session",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("mount", sa.LargeBinary(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("usb_serial", sa.String(128), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_dock_session_open", "dock_session", ["station_id", "closed_at"])
    op.create_table(
        "ingest_job",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("dock_session.id"), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("path", sa.LargeBinary(), nullable=False),
        sa.Column("rel", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("manifest", sa.LargeBinary(), nullable=True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("store_version", sa.String(256), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_try", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ingest_job_state", "ingest_job", ["station_id", "state"])
    op.create_index("ix_ingest_job_session", "ingest_job", ["session_id", "rel"])


def downgrade() -> None:
    op.drop_table("ingest_job")
    op.drop_table("dock_session")
