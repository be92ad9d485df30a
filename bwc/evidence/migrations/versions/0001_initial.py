"""Initial catalog: items, custody events, log head, checkpoints, signing keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("original_path", sa.Text(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("officer_id", sa.String(128), nullable=True),
        sa.Column("recorded_start", UTCDateTime(), nullable=True),
        sa.Column("recorded_end", UTCDateTime(), nullable=True),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False, server_default=""),
        sa.Column("store_version", sa.String(256), nullable=True),
    )
    op.create_index("ix_item_device_id", "item", ["device_id"])
    op.create_index("ix_item_officer_id", "item", ["officer_id"])
    op.create_index("ix_item_recorded_start", "item", ["recorded_start"])
    op.create_index("ix_item_ingested_at", "item", ["ingested_at"])
    op.create_table(
        "event",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_event_item", "event", ["item_sha256"])
    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=True),
    )
    op.execute("INSERT INTO log_head (id, size) VALUES (1, 0)")
    op.create_table(
        "checkpoint",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "signing_key",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("signing_key", "checkpoint", "log_head", "event", "item"):
        op.drop_table(table)
