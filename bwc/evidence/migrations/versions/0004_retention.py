"""Retention: item retention class, case link and deletion by policy; legal holds.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_retention",
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("item.sha256", name="fk_item_retention_item"),
            primary_key=True,
        ),
        sa.Column("class_name", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("retain_until", UTCDateTime(), nullable=True),
        sa.Column("lock_until", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False, server_default="active"),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('active', 'deleted-by-policy')", name="ck_item_retention_state"
        ),
    )
    op.create_index("ix_item_retention_case_id", "item_retention", ["case_id"])
    op.create_index("ix_item_retention_retain_until", "item_retention", ["retain_until"])
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("item.sha256", name="fk_legal_hold_item"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
        sa.Column("placed_by", sa.Text(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.Text(), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_legal_hold_sha256", "legal_hold", ["sha256"])
    # At most one open hold per item, even with several stations on one catalog.
    op.create_index(
        "uq_legal_hold_open",
        "legal_hold",
        ["sha256"],
        unique=True,
        sqlite_where=sa.text("released_at IS NULL"),
        postgresql_where=sa.text("released_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("legal_hold")
    op.drop_table("item_retention")
