"""Checkpoint timestamps: the RFC 3161 token of each checkpoint published while a TSA is
configured (`[timestamp]`), pending until the TSA answers (bwc.evidence.stamps).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_timestamp",
        sa.Column(
            "checkpoint_id",
            sa.Integer(),
            sa.ForeignKey("checkpoint.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("tsa_url", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tsr", sa.LargeBinary(), nullable=True),
        sa.Column("gen_time", UTCDateTime(), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("checkpoint_timestamp")
