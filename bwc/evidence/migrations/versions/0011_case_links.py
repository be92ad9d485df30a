"""Case links: an item may belong to several cases (`bwc case link`). Existing single case
ids (item_retention.case_id) become links; nothing new is logged for them, their
`retention-changed` event already records the case.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bwc.evidence.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_link",
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("item.sha256", name="fk_case_link_item"),
            primary_key=True,
        ),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("linked_by", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_link_sha256", "case_link", ["sha256"])
    op.execute(
        "INSERT INTO case_link (case_id, sha256, linked_at, linked_by) "
        "SELECT case_id, sha256, changed_at, changed_by FROM item_retention "
        "WHERE case_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_case_link_sha256", "case_link")
    op.drop_table("case_link")
