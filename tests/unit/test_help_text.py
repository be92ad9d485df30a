"""--help reads as prose: a docstring's paragraphs are reflowed to the terminal, not broken
where the source wrapped them (Typer 0.29 keeps those breaks after the first paragraph)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bwc.cli import _reflow

pytestmark = pytest.mark.unit


def test_paragraph_lines_are_joined_and_lists_kept() -> None:
    doc = """Title line.

    First paragraph, wrapped
    in the source.

    Items:
    - one
    - two
    """
    assert _reflow(doc) == (
        "Title line.\n\nFirst paragraph, wrapped in the source.\n\nItems:\n- one\n- two"
    )


def help_of(*args: str, columns: int) -> str:
    return subprocess.run(
        [sys.executable, "-m", "bwc.cli", *args, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    ).stdout


def test_a_wide_terminal_fills_lines_up_to_100_columns() -> None:
    """The source breaks after "a failing"; the help fills the terminal's lines instead,
    up to 100 columns (longer lines are hard to read, however wide the terminal)."""
    text = help_of("export", columns=300)
    rows = text.splitlines()
    assert max(len(row) for row in rows) <= 100, text
    line = "Every item is re-hashed while it is copied and verified (signature, log) first;"
    assert any(line in row and "a failing item" in row for row in rows), text


def test_help_is_plain_text_with_whole_option_names() -> None:
    """click's plain help (no boxes): an option's description beside its whole name, in a
    column wide enough to read at 80 columns."""
    text = help_of("audit", "report", columns=80)
    assert "╭" not in text and "│" not in text, text
    (row,) = [r for r in text.splitlines() if r.startswith("  --allow-unverified")]
    assert row.split()[:5] == ["--allow-unverified", "Report", "even", "when", "inputs"], text


def test_help_fits_80_columns() -> None:
    for cmd in (("export",), ("verify",), ("case", "show"), ("audit", "issues")):
        text = help_of(*cmd, columns=80)
        assert max(len(row) for row in text.splitlines()) <= 80, (cmd, text)


def test_daemon_help_shows_brackets_and_one_default_for_live() -> None:
    # `[daemon]` shown as written (rich markup once ate it); the default of --live said once
    text = help_of("daemon", columns=80)
    flat = " ".join(text.replace("│", " ").split())  # the help column's lines joined
    assert "`[daemon] docks` in bwc.toml" in flat, text
    assert "[default: no-live]" not in text and "[default: live]" not in text, text
    assert "Default: when standard error is a terminal." in flat, text
    assert max(len(row) for row in text.splitlines()) <= 80, text
