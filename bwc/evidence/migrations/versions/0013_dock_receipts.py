"""Dock receipts (交接单): where a dock session's last logged receipt is.

``receipt_idx`` is the custody log index of the session's latest receipt (a ``receipt``
event when all its files were committed, or its ``undocked`` event), so `bwc receipt` finds
it without reading the log; ``receipt_upto`` is the highest ingest job id that receipt
covered, so the daemon logs a receipt once per moment all of a camera's files are in, not at
every scan, also after a restart. Only adds columns; sessions docked before have none (their
receipt is recomputed from their jobs).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dock_session") as t:
        t.add_column(sa.Column("receipt_idx", sa.BigInteger(), nullable=True))
        t.add_column(sa.Column("receipt_upto", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dock_session") as t:
        for name in ("receipt_upto", "receipt_idx"):
            t.drop_column(name)
