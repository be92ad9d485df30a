"""The schema heads every command checks against must be the migration scripts' heads."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from bwc.evidence import db

pytestmark = pytest.mark.unit


def test_schema_heads_match_the_migration_scripts() -> None:
    heads = set(ScriptDirectory.from_config(db._alembic_config()).get_heads())
    assert heads == set(db.SCHEMA_HEADS)
