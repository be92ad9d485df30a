"""Explanation review: an explanation counts in the audit only once a named supervisor has
approved it (`bwc audit approve`); a rejected one needs a reason. Existing explanations stay
"submitted" (awaiting review): approving them without a logged event would not verify.

Only adds columns to ``explanation``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("explanation") as t:
        t.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="submitted"))
        t.add_column(sa.Column("reviewed_by", sa.Text(), nullable=True))
        t.add_column(sa.Column("review_reason", sa.Text(), nullable=True))
        t.add_column(sa.Column("reviewed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("explanation") as t:
        for name in ("reviewed_at", "review_reason", "reviewed_by", "status"):
            t.drop_column(name)
