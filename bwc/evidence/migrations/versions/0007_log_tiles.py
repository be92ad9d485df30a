"""The custody log as C2SP tlog-tiles (levels 1 and up; level 0 is event.leaf_hash), the
tiled size in the log head, the announcing event of each signing key. Joins the schema's
branches. The tiles of an existing log are built by `bwc init` (custody.build_tiles), in a
streaming pass with a progress bar, not here.

Revision ID: 0007
Revises: 0003, 0004, 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = ("0003", "0004", "0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_tile",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
    )
    with op.batch_alter_table("log_head") as t:
        t.add_column(sa.Column("tiled_size", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("signing_key") as t:
        t.add_column(sa.Column("announced_idx", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_key") as t:
        t.drop_column("announced_idx")
    with op.batch_alter_table("log_head") as t:
        t.drop_column("tiled_size")
    op.drop_table("log_tile")
