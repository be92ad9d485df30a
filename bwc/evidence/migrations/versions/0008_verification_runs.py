"""Verification runs: one `verification-run` custody event per `bwc verify` run (instead of
one `verified` event per item and run), cached here for `bwc show`'s history; and where the
last recorded check of the whole log is (`bwc log verify --since last`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_run",
        sa.Column("event_idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(64), nullable=False, unique=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("log_size", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "verification_run_item",
        sa.Column("event_idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.String(64), primary_key=True),
    )
    op.create_index("ix_verification_run_item_sha256", "verification_run_item", ["sha256"])
    with op.batch_alter_table("log_head") as t:
        t.add_column(sa.Column("verified_idx", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_head") as t:
        t.drop_column("verified_idx")
    op.drop_index("ix_verification_run_item_sha256", "verification_run_item")
    op.drop_table("verification_run_item")
    op.drop_table("verification_run")
