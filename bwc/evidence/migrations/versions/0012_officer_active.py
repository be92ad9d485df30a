"""Officers who left: the roster keeps them (their cases still count: they did the work),
marked inactive from a date (`bwc audit officers deactivate`, or an ``active`` column in the
roster file), so the equipage rate counts current staff only.

Only adds columns to ``officer``; every existing officer stays active, and its logged fact
(which digests an active officer as before) still verifies.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("officer") as t:
        t.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        t.add_column(sa.Column("inactive_from", UTCDateTime(), nullable=True))
        t.add_column(sa.Column("inactive_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("officer") as t:
        for name in ("inactive_reason", "inactive_from", "active"):
            t.drop_column(name)
