"""The command-line modules import cheaply: no catalog (SQLAlchemy, SQLModel, Alembic), S3
client, ffmpeg bindings, watcher, pydantic or heavy rich widgets at import time, so `bwc
--help`, `--version` and every command start fast. Commands import those when they run."""

from __future__ import annotations

import json
import subprocess
import sys
import typing

import pytest
import typer
import typer.main

pytestmark = pytest.mark.unit

# Top-level packages, and single modules, that must not be loaded by importing the CLI.
HEAVY_PACKAGES = frozenset(
    {"sqlalchemy", "sqlmodel", "alembic", "boto3", "botocore", "ffmpeg", "watchdog", "pydantic"}
)
HEAVY_MODULES = frozenset({"rich.table", "rich.progress"})

CLI_MODULES = [
    "bwc.cli",
    "bwc.cli_common",
    "bwc.cli_imports",
    "bwc.cli_audit",
    "bwc.cli_roster",
    "bwc.cli_devices",
    "bwc.cli_store",
    "bwc.launch",
]

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", CLI_MODULES)
def test_import_loads_no_heavy_module(module: str) -> None:
    # A fresh interpreter: this test process has long since imported everything.
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, module],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY_PACKAGES or m in HEAVY_MODULES]
    assert heavy == [], f"importing {module} loads {heavy}"


def test_command_annotations_resolve() -> None:
    """Typer resolves each command's annotations at registration: every name they use must be
    a real module-level name, not one imported only under TYPE_CHECKING."""
    from bwc import cli_audit, cli_devices, cli_store

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    for module in (cli_store, cli_audit, cli_devices):
        module.register(app)
    command = typer.main.get_command(app)
    callbacks = []
    stack = [command]
    while stack:
        c = stack.pop()
        if c.callback is not None:
            callbacks.append(c.callback)
        stack.extend(getattr(c, "commands", {}).values())
    assert len(callbacks) > 10
    for cb in callbacks:
        typing.get_type_hints(getattr(cb, "__wrapped__", cb), include_extras=True)
