"""The shape of the code (DESIGN.md, "Shape"): the import-linter contracts in pyproject.toml
hold (layers pointing down, no circles between sibling modules or packages, the core free of
typer/rich/watchdog, the AWS SDK only in the S3 store), and breaking one fails the check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the ``bwc`` package found in ``tree``, with the project's contracts."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_contracts_hold() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # an upward arrow: configuration reaching into the evidence core
        ("bwc/config/home.py", "import bwc.evidence.custody", "bwc's layers"),
        # a circle between two evidence modules
        ("bwc/evidence/merkle.py", "import bwc.evidence.custody", "no circles"),
        # the core importing the command line's toolkit
        ("bwc/evidence/verify/run.py", "import rich", "the core never imports"),
        # the verification core reaching for the catalog
        ("bwc/evidence/verify/core.py", "import sqlmodel", "the verification core takes values"),
        # the custody report running a browser (that is the PDF module's job)
        ("bwc/evidence/bundle/report.py", "import subprocess", "the custody report is pure"),
        # the bundle's standalone verifier reaching for bwc's own code
        ("bwc/evidence/bundle/verify.py", "import bwc.evidence.merkle", "standalone verifier"),
    ],
)
def test_a_broken_contract_is_caught(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copytree(ROOT / "bwc", tmp_path / "bwc", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode != 0, r.stdout
    assert f"{broken}" in r.stdout and "BROKEN" in r.stdout
