"""Audit: the officer roster, enforcement cases with their officers, and explanations.
The device checkout ledger (`assignment`) and clock offsets come from 0002.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officer",
        sa.Column("officer_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("county", sa.String(128), nullable=False),
        sa.Column("frontline", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "enforcement_case",
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("category", sa.Text(), nullable=False, server_default=""),
        sa.Column("unit", sa.String(128), nullable=False, server_default=""),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint('"end" > "start"', name="ck_enforcement_case_window"),
    )
    op.create_index("ix_enforcement_case_start", "enforcement_case", ["start"])
    op.create_index("ix_enforcement_case_end", "enforcement_case", ["end"])
    op.create_table(
        "case_officer",
        sa.Column(
            "case_id",
            sa.String(128),
            sa.ForeignKey("enforcement_case.case_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("officer_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_case_officer_officer", "case_officer", ["officer_id"])
    op.create_table(
        "explanation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(128), nullable=False),
        sa.Column("officer_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_explanation_pair", "explanation", ["case_id", "officer_id"])


def downgrade() -> None:
    op.drop_table("explanation")
    op.drop_table("case_officer")
    op.drop_table("enforcement_case")
    op.drop_table("officer")
