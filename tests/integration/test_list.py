"""Issue 15, points 4 and 5: `bwc list` for an evidence-room clerk. It fits an 80-column
terminal, sorts by recording time (items without one last), says "1 item" / "N items",
filters by recording time given in the configured local zone, and shows local times with
their offset while JSON stays UTC. `bwc show`, `bwc status` and `bwc devices list` show local
times too. The table is read from the real `bwc` command in a terminal 80 columns wide; the
other checks run the command in-process (quicker, same code)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bwc import cli
from tests.conftest import Result, make_clip
from tests.integration.daemon_util import BWC_EXE

pytestmark = pytest.mark.integration

LONG_NAME = "GPS_TRACK_20261015_FROM_THE_CAMERA_WITH_A_VERY_LONG_NAME_0001.csv"


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BWC_EXE), *args],
        env=os.environ | {"BWC_HOME": str(home), "COLUMNS": "80"} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(home: Path, *args: str, **env: str) -> str:
    r = run(home, *args, **env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


Runner = Callable[..., Result]


def in_process(bwc: Runner, home: Path, *args: str) -> str:
    r = bwc("--home", str(home), *args)
    assert r.code == 0, r.out + r.err
    return r.out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli_in_process(*args: str) -> None:
    """The CLI in this process, for the module's shared home (quicker than a subprocess)."""
    try:
        cli.main(list(args))
    except SystemExit as e:
        assert not e.code, args
    finally:
        cli._state.clear()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A home with four items ingested out of recording order (name -> sha256), made once
    for the tests that only read it. The cn-standard names carry the recording start in
    Shanghai time (the default zone)."""
    tmp = tmp_path_factory.mktemp("list")
    home = tmp / "home"
    cli_in_process("--home", str(home), "init", "--station-id", "st-test")
    late, early, clip, notime = (tmp / n for n in ("late", "early", "clip", "notime"))
    for d in (late, early, clip, notime):
        d.mkdir()
    files = {
        "late": late / "DSJ0042_110023_20261015093012_0003.MP4",  # 01:30:12 UTC
        "early": early / "DSJ0042_110023_20261014230000_0001.MP4",  # 14 Oct 15:00 UTC
        "clip": clip / "DSJ0042_110023_20261015081500_0002.MP4",  # 00:15 UTC, 2 s long
        "notime": notime / LONG_NAME,
    }
    files["late"].write_bytes(b"not media, a clip all the same\n")
    files["early"].write_bytes(b"another clip\n")
    make_clip(files["clip"], seconds=2.0)
    files["notime"].write_text("time,lat,lon\n")
    # ingested: no time first, then latest to earliest recording
    for folder in (notime, late, clip, early):
        cli_in_process("--home", str(home), "--actor", "test-clerk", "ingest", str(folder))
    return home, {k: sha(p) for k, p in files.items()}


def rows(text: str) -> list[str]:
    """The table's data rows (they start with an item id)."""
    return [ln for ln in text.splitlines() if ln[:10].isalnum() and ln[:2] != "id"]


def test_list_fits_80_columns_sorted_by_recording_time(
    shared: tuple[Path, dict[str, str]],
) -> None:
    home, items = shared
    text = ok(home, "list")
    lines = text.splitlines()
    assert all(len(ln) <= 80 for ln in lines), "\n" + text
    # recording order, the item without a recording time last (ingest order is different)
    order = [items[k][:10] for k in ("early", "clip", "late", "notime")]
    assert [r.split()[0] for r in rows(text)] == order, text
    # local time (Shanghai), the offset stated once in the header, the zone named below
    assert "recorded +08:00" in lines[0], text
    by_id = {r.split()[0]: r for r in rows(text)}
    assert "2026-10-15 09:30" in by_id[items["late"][:10]], text
    assert "2026-10-14 23:00" in by_id[items["early"][:10]], text
    assert " 0:02 " in by_id[items["clip"][:10]], text  # duration of a real clip
    # the long name is shortened in the middle: its start and its end stay
    notime = by_id[items["notime"][:10]]
    assert "GPS" in notime and "…" in notime and notime.rstrip().endswith("_0001.csv"), text
    assert "4 items; times in Asia/Shanghai (UTC+08:00)" in text, text
    # JSON stays UTC, in the same order
    data = json.loads(ok(home, "list", "--json"))
    assert [d["sha256"][:10] for d in data] == order
    assert data[2]["recorded_start"] == "2026-10-15T01:30:12Z"
    # --sort ingested: the old order
    text = ok(home, "list", "--sort", "ingested")
    ingested = [items[k][:10] for k in ("notime", "late", "clip", "early")]
    assert [r.split()[0] for r in rows(text)] == ingested, text


def test_list_says_one_item(bwc: Runner, home: Path, tmp_path: Path) -> None:
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "DSJ0042_110023_20261015093012_0003.MP4").write_bytes(b"one\n")
    in_process(bwc, home, "ingest", str(tmp_path / "cam"))
    text = in_process(bwc, home, "list")
    assert "1 item;" in text and "items" not in text, text
    text = in_process(bwc, home, "list", "--officer", "nobody")
    assert "0 items;" in text, text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # a date alone: local midnight; as an end, the whole day is included
        (("--recorded-from", "2026-10-15"), {"clip", "late"}),
        (("--recorded-to", "2026-10-14"), {"early"}),
        (("--recorded-to", "2026-10-15"), {"early", "clip", "late"}),
        # a local date-time, and one with an explicit offset
        (("--recorded-from", "2026-10-15T09:00", "--recorded-to", "2026-10-15 10:00"), {"late"}),
        (("--recorded-to", "2026-10-15T00:20:00Z"), {"early", "clip"}),
    ],
)
def test_list_filters_by_recording_time(
    bwc: Runner, shared: tuple[Path, dict[str, str]], args: tuple[str, ...], expected: set[str]
) -> None:
    home, items = shared
    data = json.loads(in_process(bwc, home, "list", "--json", *args))
    assert {d["sha256"] for d in data} == {items[k] for k in expected}
    text = in_process(bwc, home, "list", *args)
    assert [r.split()[0] for r in rows(text)] == [d["sha256"][:10] for d in data], (
        "the table and the JSON list the same items in the same order"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--recorded-from", "yesterday"), "--recorded-from 'yesterday'"),
        (("--recorded-to", "2026-13-01"), "--recorded-to '2026-13-01'"),
        (("--recorded-from", "0001-01-01"), "--recorded-from '0001-01-01'"),
        (("--recorded-to", "2026-10-15T25:00"), "--recorded-to '2026-10-15T25:00'"),
        (("--recorded-from", "2026-10-16", "--recorded-to", "2026-10-15"), "is not before"),
        (("--sort", "officer"), "--sort must be recorded or ingested"),
    ],
)
def test_list_bad_recording_time_is_one_line_exit_2(
    bwc: Runner, home: Path, args: tuple[str, ...], needle: str
) -> None:
    r = bwc("list", *args)
    assert r.code == 2, r.out + r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert needle in r.err and "Traceback" not in r.err, r.err
    assert r.out == ""


def test_show_and_devices_list_show_local_time(
    bwc: Runner, shared: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, items = shared

    def ok(home: Path, *args: str) -> str:
        return in_process(bwc, home, *args)

    text = ok(home, "show", items["late"][:12])
    assert "recorded_start  2026-10-15 09:30:12 +08:00" in text, text
    custody = text.split("chain of custody", 1)[1].split("checks", 1)[0]
    assert " +08:00  ingested" in custody, text
    assert json.loads(ok(home, "show", "--json", items["late"][:12]))["recorded_start"] == (
        "2026-10-15T01:30:12Z"
    )

    text = ok(home, "devices", "assign", "110023", "DSJ0042", "--from", "2026-10-15T08:00")
    assert "holds DSJ0042 from 2026-10-15 08:00:00 +08:00 (still held)" in text, text
    text = ok(home, "devices", "clock", "DSJ0042", "--offset", "+12s", "--at", "2026-10-15T08:05")
    assert "+12000 ms measured at 2026-10-15 08:05:00 +08:00" in text, text
    text = ok(home, "devices", "list")
    assert "2026-10-15 08:00:00 +08:00" in text, text
    assert "+12000 ms at 2026-10-15 08:05:00 +08:00" in text, text
    assert "times in Asia/Shanghai (UTC+08:00)" in text, text
    data = json.loads(ok(home, "devices", "list", "--json"))
    assert data["assignments"][0]["start"] == "2026-10-15T00:00:00Z"
    # the configured zone, whatever it is (a zone west of UTC, no daylight saving)
    monkeypatch.setenv("BWC_TIMEZONE", "America/Sao_Paulo")
    text = ok(home, "devices", "list")
    assert "2026-10-14 21:00:00 -03:00" in text, text


def test_log_events_show_local_time(
    bwc: Runner, shared: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bwc log events` for people: each event's time in the configured zone with its
    offset, and the zone named; --json keeps UTC (and the leaf bytes)."""
    home, _ = shared
    monkeypatch.setenv("BWC_TIMEZONE", "America/Sao_Paulo")
    text = in_process(bwc, home, "log", "events")
    lines = text.strip().splitlines()
    assert lines[-1] == "times in America/Sao_Paulo (UTC-03:00)", text
    assert all(" -03:00  " in line for line in lines[:-1] if line.startswith("#")), text
    data = json.loads(in_process(bwc, home, "log", "events", "--json"))
    assert all(e["at"].endswith("Z") for e in data)


def test_status_shows_local_time(bwc: Runner, home: Path) -> None:
    from sqlmodel import Session

    from bwc.evidence.models import DockSession
    from bwc.evidence.station import Station

    # a camera the daemon has docked (the session row it writes when a camera appears)
    st = Station.open(home, actor="test-clerk", passphrase=None)
    docked = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)
    with Session(st.engine) as s:
        s.add(
            DockSession(
                station_id=st.station_id,
                mount=b"/media/dock/CAM01",
                device_id="DSJ0042",
                first_seen=docked,
                last_seen=docked,
            )
        )
        s.commit()
    st.engine.dispose()
    text = in_process(bwc, home, "status")
    assert "device DSJ0042 session 1 since 2026-10-15 09:30:00 +08:00" in text, text
    # no daemon runs: the session is open in the catalog, the camera perhaps long gone
    assert "docked when the daemon stopped: /media/dock/CAM01 device DSJ0042" in text, text
    assert "closed when the daemon, started again, finds its camera gone" in text, text
    data = json.loads(in_process(bwc, home, "status", "--json"))
    assert data["sessions"][0]["first_seen"] == "2026-10-15T01:30:00Z"


def test_show_fits_80_columns_and_cuts_nothing(
    bwc: Runner, shared: tuple[Path, dict[str, str]]
) -> None:
    """`bwc show` at 80 columns: every line within them; a value longer than a line (the
    manifest's sha256 under its event, a long path) folded onto the next, never cut; the
    media summary in words, its container time in the local zone."""
    from rich.cells import cell_len

    home, items = shared
    for name in ("clip", "notime"):
        text = in_process(bwc, home, "show", items[name][:12], "--no-record")
        assert all(cell_len(line) <= 80 for line in text.splitlines()), text
        flat = "".join(line.strip() for line in text.splitlines())
        data = json.loads(in_process(bwc, home, "show", items[name], "--json", "--no-record"))
        assert f"path{data['path']}" in flat.replace(" ", ""), text
        (ingested,) = [e for e in data["events"] if e["kind"] == "ingested"]
        assert f"manifest_sha256={ingested['details']['manifest_sha256']}" in flat, text
    text = in_process(bwc, home, "show", items["clip"][:12], "--no-record")
    assert "  media           2.0 s; video h264 160×120 at 10 fps; audio aac 44.1 kHz;" in text
    assert "{" not in text.split("chain of custody")[0], text  # words, not JSON
