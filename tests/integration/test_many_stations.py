"""Many stations at once on one PostgreSQL catalog and one store (issue 13): eleven processes,
one per county bureau, append and sign checkpoints at the same time; one is killed with -9
in the middle. No gap, no deadlock, nothing half-written, every checkpoint consistent with
every other, and the whole log (and the store's published copy) verifies. A short run here;
`bench/stations.py` runs it for minutes and reports the checkpoint latencies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import pg

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STATIONS = 11
SECONDS = 8.0

# One station: append batches of 1-20 events, sign a checkpoint every few batches, until the
# deadline; print what it did. Counted only after each commit returns.
WORKER = r"""
import json, random, sys, time
from pathlib import Path
from bwc.evidence import custody
from bwc.evidence.station import Station

home, seconds = Path(sys.argv[1]), float(sys.argv[2])
st = Station.open(home, actor=home.name, passphrase=None)
rng = random.Random(home.name)
appended = 0
latencies = []
print("READY", flush=True)
deadline = time.monotonic() + seconds
n = 0
while time.monotonic() < deadline:
    k = rng.randint(1, 20)
    with st.session() as s:
        batch = [st.event("viewed", "%064x" % rng.getrandbits(256), n=appended + i)
                 for i in range(k)]
        custody.append_events(s, batch)
    appended += k
    n += 1
    if n % 5 == 0:
        t = time.perf_counter()
        st.checkpoint()
        latencies.append(time.perf_counter() - t)
print(json.dumps({"appended": appended, "checkpoints": latencies}), flush=True)
"""


@pytest.fixture
def catalog(bwc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    pg.require_server()
    with pg.databases() as dbs:
        yield pg.sqlalchemy_url(dbs.create())


def test_eleven_stations_at_once_and_one_killed(
    bwc, catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = (tmp_path / "city-store").as_uri()
    homes = [tmp_path / f"st-{i:02d}" for i in range(STATIONS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env |= {"BWC_CATALOG": catalog, "BWC_STORE": store, "BWC_LOG_ORIGIN": "bwc/city"}
    for k, v in env.items():
        if k.startswith("BWC_"):
            monkeypatch.setenv(k, v)
    for h in homes:
        r = bwc("--home", h, "init", "--station-id", h.name)
        assert r.code == 0, r.err
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(h), str(SECONDS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in homes
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stderr is not None
            if p.stdout.readline().strip() != "READY":
                pytest.fail(f"a station did not start: {p.stderr.read()[-2000:]}")
        time.sleep(SECONDS / 2)
        victim = procs[-1]
        os.kill(victim.pid, signal.SIGKILL)  # mid-append, mid-checkpoint: whatever it was
        results = []
        for p in procs[:-1]:
            out, err = p.communicate(timeout=SECONDS * 20)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        victim.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(r["appended"] > 0 and r["checkpoints"] for r in results)
    # The log: every survivor's events all there, the victim's only whole batches, no gap
    # (log verify checks the indexes, every row, tile and checkpoint, and the store's copy).
    r = bwc("--home", homes[0], "log", "verify", "--json")
    assert r.code == 0, r.out + r.err
    log = json.loads(r.out)
    assert log["ok"] and log["checkpoints"] >= sum(len(x["checkpoints"]) for x in results)
    with pg.connect(catalog.rsplit("/", 1)[1]) as conn:
        counts = dict(conn.execute("SELECT actor, count(*) FROM event GROUP BY actor").fetchall())
        sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoint ORDER BY id").fetchall()]
    for h, res in zip(homes, results, strict=False):
        assert counts[h.name] == res["appended"], h.name
    assert sizes == sorted(sizes)
    r = bwc("--home", homes[1], "log", "verify", "--from-store", store)
    assert r.code == 0, r.out + r.err
