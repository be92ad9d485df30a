"""Where a station's home is, and where things are in it. Light on purpose: the command line
resolves the home before it loads anything heavy."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_NAME = "bwc.toml"
DEFAULT_HOME = "~/.bwc"


def resolve_home(home: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """``--home``, else ``BWC_HOME``, else ``~/.bwc``; absolute."""
    env = os.environ if env is None else env
    raw = str(home) if home is not None else env.get("BWC_HOME", DEFAULT_HOME)
    return Path(raw).expanduser().resolve()


def default_catalog_url(home: Path) -> str:
    return f"sqlite:///{home / 'catalog.sqlite'}"


def default_store_url(home: Path) -> str:
    return (home / "store").as_uri()
