"""Bad values on the command line, in settings and in input files end in a usage or input
error (one clear line, the documented exit code), never in exit 10 (an internal error): huge
and non-finite numbers, out-of-range months and times, numbers past Python's int limit,
worker counts, and a recording time in a file name that has no UTC equivalent (issue 12,
defect 16)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, make_clip

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]

FAR = "9" * 400  # a number of seconds that float() reads as infinity


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised home, copied for each test (`bwc init` once, not 30 times)."""
    home = tmp_path_factory.mktemp("template") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env["BWC_HOME"] = str(home)
    exe = Path(sys.executable).with_name("bwc")
    done = subprocess.run(
        [str(exe), "init", "--station-id", "st-bad"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template home, where BWC_HOME points (tests/conftest.py)."""
    target = tmp_path / "home"
    shutil.copytree(template, target)
    return target


def _setting(home: Path, spec: str) -> None:
    """``"[table]\nkey = value"`` or ``"key = value"`` (top level) into bwc.toml, in its
    table (which `bwc init` wrote), so that the file stays valid TOML."""
    path = home / "bwc.toml"
    lines = path.read_text("utf-8").splitlines()
    table, _, line = spec.rpartition("\n")
    at = lines.index(table) + 1 if table else 0
    key = line.split("=")[0].strip()
    stop = next((i for i in range(at, len(lines)) if lines[i].startswith("[")), len(lines))
    # the key as init wrote it in that table goes; ours comes first
    lines = [
        ln for i, ln in enumerate(lines) if not (at <= i < stop and ln.split("=")[0].strip() == key)
    ]
    lines.insert(at, line)
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # still valid TOML
    path.write_text(text, "utf-8")


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


ROSTER_HEAD = "officer_id,name,unit,county,frontline\n"
LEDGER_HEAD = "officer_id,device_id,start,end\n"

# (id, command (with {tmp} for files made by `files`), files, settings, exit, words)
CASES: list[tuple[str, list[str], dict[str, str], str, int, str]] = [
    (
        "max-gap inf",
        ["audit", "report", "--month", "2026-10", "--max-gap", "inf"],
        {},
        "",
        2,
        "--max-gap",
    ),
    (
        "max-gap nan",
        ["audit", "report", "--month", "2026-10", "--max-gap", "nan"],
        {},
        "",
        2,
        "--max-gap",
    ),
    (
        "start-grace huge",
        ["audit", "report", "--month", "2026-10", "--start-grace", "1e300"],
        {},
        "",
        2,
        "--start-grace",
    ),
    ("end-grace negative", ["audit", "case", "C1", "--end-grace", "-1"], {}, "", 2, "--end-grace"),
    ("max-gap 400 digits", ["audit", "case", "C1", "--max-gap", FAR], {}, "", 2, "--max-gap"),
    ("month 9999-12", ["audit", "report", "--month", "9999-12"], {}, "", 2, "--month"),
    ("month 0001-01", ["audit", "report", "--month", "0001-01"], {}, "", 2, "--month"),
    ("month 13", ["audit", "report", "--month", "2026-13"], {}, "", 2, "--month"),
    (
        "assign --from year 1",
        ["devices", "assign", "O1", "D1", "--from", "0001-01-01"],
        {},
        "",
        2,
        "--from",
    ),
    (
        "assign --to year 9999",
        [
            "devices",
            "assign",
            "O1",
            "D1",
            "--from",
            "2026-10-01",
            "--to",
            "9999-12-31T23:00:00-05:00",
        ],
        {},
        "",
        2,
        "--to",
    ),
    (
        "clock --at far future",
        ["devices", "clock", "D1", "--offset", "+1s", "--at", "9999-12-31T23:59:59-12:00"],
        {},
        "",
        2,
        "--at",
    ),
    (
        "clock offset 400 digits",
        ["devices", "clock", "D1", "--offset", f"+{FAR}s"],
        {},
        "",
        2,
        "offset",
    ),
    (
        "clock offset 30 days",
        ["devices", "clock", "D1", "--offset", "+720h"],
        {},
        "",
        2,
        "--offset",
    ),
    (
        "list --since year 1 east",
        ["list", "--since", "0001-01-01T00:00:00+08:00"],
        {},
        "",
        2,
        "--since",
    ),
    (
        "import id of 5000 digits",
        ["audit", "import", "officers", "{tmp}/roster.json"],
        {
            "roster.json": '[{"officer_id": ' + "7" * 5000 + ', "name": "x", "unit": "u", '
            '"county": "c", "frontline": true}]'
        },
        "",
        6,
        "roster.json line 1",
    ),
    (
        "import nested JSON",
        ["audit", "import", "officers", "{tmp}/deep.json"],
        {"deep.json": "[" * 100_000 + "]" * 100_000},
        "",
        6,
        "deep.json line 1",
    ),
    (
        "import ledger year 9999 west",
        ["devices", "import", "{tmp}/ledger.csv"],
        {"ledger.csv": LEDGER_HEAD + "O1,D1,9999-12-31T23:00:00-05:00,\n"},
        "",
        6,
        "ledger.csv line 2",
    ),
    (
        "import ledger year 1 east",
        ["devices", "import", "{tmp}/ledger.csv"],
        {"ledger.csv": LEDGER_HEAD + "O1,D1,0001-01-01T01:00:00,\n"},
        "",
        6,
        "ledger.csv line 2",
    ),
    (
        "settings max_gap_s inf",
        ["audit", "report", "--month", "2026-10"],
        {},
        "[audit]\nmax_gap_s = inf",
        4,
        "audit.max_gap_s",
    ),
    (
        "settings upload_limit_h huge",
        ["audit", "report", "--month", "2026-10"],
        {},
        "[audit]\nupload_limit_h = 1e300",
        4,
        "audit.upload_limit_h",
    ),
    (
        "settings rescan_seconds huge",
        ["status"],
        {},
        "[daemon]\nrescan_seconds = 1e300",
        4,
        "daemon.rescan_seconds",
    ),
    (
        "settings catalog_wait huge",
        ["status"],
        {},
        "catalog_wait_seconds = 1e300",
        4,
        "catalog_wait_seconds",
    ),
    (
        "settings daemon workers 10**6",
        ["status"],
        {},
        "[daemon]\nworkers = 1000000",
        4,
        "daemon.workers",
    ),
    (
        "settings verify_workers 10**6",
        ["verify", "--all"],
        {},
        "verify_workers = 1000000",
        4,
        "verify_workers",
    ),
    (
        "settings orphan_grace huge",
        ["store", "check"],
        {},
        "orphan_grace_seconds = 1e300",
        4,
        "orphan_grace_seconds",
    ),
    (
        "settings stable_seconds nan",
        ["status"],
        {},
        "[daemon]\nstable_seconds = nan",
        4,
        "daemon.stable_seconds",
    ),
    (
        "settings retention 99999 years",
        ["status"],
        {},
        '[retention.classes]\nlong = "99999 years"',
        4,
        "retention.classes.long",
    ),
]


@pytest.mark.parametrize(
    ("command", "files", "settings", "code", "words"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_bad_value_is_one_clear_line_not_an_internal_error(
    bwc: Runner,
    home: Path,
    tmp_path: Path,
    command: list[str],
    files: dict[str, str],
    settings: str,
    code: int,
    words: str,
) -> None:
    for name, text in files.items():
        _file(tmp_path, name, text)
    if settings:
        _setting(home, settings)
    before = _catalog_counts(home)
    r = bwc(*[a.replace("{tmp}", str(tmp_path)) for a in command])
    assert r.code == code, f"exit {r.code}, expected {code}\nout: {r.out}\nerr: {r.err}"
    assert "Traceback" not in r.err + r.out, r.err
    assert "internal error" not in r.err, r.err
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("bwc: error:") or ln.startswith("Error")]
    assert len(errors) == 1, r.err
    assert words in r.err, r.err
    assert _catalog_counts(home) == before  # nothing stored


def _catalog_counts(home: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("item", "event", "assignment", "device_clock", "officer")
        }
    finally:
        con.close()


@pytest.mark.parametrize(
    ("name", "tz", "start"),
    [
        # Shanghai local time, 8 h ahead of UTC: year 1 has no UTC equivalent
        ("DSJ0042_110023_00010101000000_0001.MP4", "Asia/Shanghai", None),
        # axis names are UTC: the end (start + duration) is past year 9999
        (
            "officer7_CAM9_20261015T093000Z/99991231_235959_0001.mp4",
            None,
            "9999-12-31T23:59:59Z",
        ),
        # a zone west of UTC: 9999-12-31 23:59 local is in year 10000 in UTC
        ("DSJ0042_110023_99991231235959_0002.MP4", "America/New_York", None),
    ],
    ids=["year-1-east", "end-past-9999", "year-9999-west"],
)
def test_file_named_with_a_time_out_of_range_in_utc_is_evidence(
    bwc: Runner, home: Path, tmp_path: Path, name: str, tz: str | None, start: str | None
) -> None:
    if tz is not None:
        _setting(home, f'timezone = "{tz}"')
    cam = tmp_path / "cam"
    clip = make_clip(cam / name, seconds=1.0, tone=1234)
    r = bwc("ingest", str(cam), "--json")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err, r.err
    data = json.loads(r.out)
    assert data["ingested"] == 1, data
    r = bwc("list", "--json")
    assert r.code == 0, r.err
    (item,) = json.loads(r.out)
    assert item["path"] == name
    assert item["size"] == clip.stat().st_size
    # the time has no UTC equivalent (or no end): unknown, never a crash or a lost file
    assert item["recorded_start"] == start
    assert item["recorded_end"] is None
    if start is None:
        assert "no-recorded-time" in item["flags"]
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def test_file_named_with_an_id_that_is_not_utf8_is_evidence(
    bwc: Runner, home: Path, tmp_path: Path
) -> None:
    """An axis-profile folder whose officer id has a byte that is not UTF-8: no id can be
    stored from it (it was an internal error), and the file is still evidence, unattributed,
    its name kept byte for byte."""
    cam = tmp_path / "cam"
    folder = os.path.join(os.fsencode(cam), b"offic\xffer_CAM9_20261015T093000Z")
    os.makedirs(folder)
    with open(os.path.join(folder, b"20261015_093000_0001.mp4"), "wb") as f:
        f.write(b"not really a video\n")
    r = bwc("ingest", str(cam), "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["ingested"] == 1, data
    (item,) = json.loads(bwc("list", "--json").out)
    assert item["officer_id"] is None
    assert item["device_id"] == "CAM9"
    assert {"non-utf8-name", "unattributed"} <= set(item["flags"])
    assert item["path"] == "offic%FFer_CAM9_20261015T093000Z/20261015_093000_0001.mp4"


@pytest.mark.parametrize(
    ("toml_line", "env", "words"),
    [
        ("verify_workers = " + "9" * 5000, {}, "a number with too many digits"),
        ("x = " + "[" * 50_000 + "]" * 50_000, {}, "nested too deeply"),
        ("", {"BWC_DAEMON": '{"workers": 3'}, 'field "daemon"'),
        ("", {"BWC_VERIFY_WORKERS": "9" * 5000}, 'field "verify_workers"'),
    ],
    ids=["toml-5000-digits", "toml-nested", "env-not-json", "env-5000-digits"],
)
def test_unreadable_settings_are_one_clear_line(
    bwc: Runner,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    toml_line: str,
    env: dict[str, str],
    words: str,
) -> None:
    path = home / "bwc.toml"
    path.write_text(toml_line + "\n" + path.read_text("utf-8"), "utf-8")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = bwc("status")
    assert r.code == 4, r.err
    errors = [ln for ln in r.err.splitlines() if ln.startswith("bwc: error:")]
    assert len(errors) == 1 and words in errors[0], r.err
    assert "internal error" not in r.err, r.err
