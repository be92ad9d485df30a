"""Indexes for "cameras that should have docked" (bwc.evidence.overdue): a camera's latest
dock, as the end of its latest dock session or the ingest time of its latest item, is one
index look-up, whatever the catalog's age (`bwc status` asks it of every camera checked out
and not docked within the limit). Indexes only: no data changes.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dock_session_device", "dock_session", ["device_id", "closed_at"])
    op.create_index("ix_item_device_ingested", "item", ["device_id", "ingested_at"])


def downgrade() -> None:
    op.drop_index("ix_item_device_ingested", table_name="item")
    op.drop_index("ix_dock_session_device", table_name="dock_session")
