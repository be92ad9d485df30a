"""Many stations at once on one PostgreSQL catalog (issue 13, point 6).

Eleven processes (one per bureau: the city and ten counties) append custody events and
sign checkpoints concurrently on one catalog and one store for --seconds; one is killed
with -9 half-way. Then: every surviving station's events are all in the log, the whole log
verifies (every row, tile and checkpoint: no gap, no fork, checkpoints consistent with each
other), the store's published copy verifies alone, and the checkpoint latencies are
reported (p50/p99/max, whole: sign and publish; and under the log-head lock only).

  python bench/stations.py --seconds 180
  python bench/stations.py --catalog postgresql+psycopg://postgres@127.0.0.1:5432/db

Without --catalog a fresh database is made on the local server (127.0.0.1:5432, user
postgres) and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[1]
PY = ROOT / ".venv" / "bin" / "python"

# One station: commits of 1-20 events (a docking's worth), a checkpoint every 5 commits,
# until the deadline. Times each checkpoint whole and its part under the head lock.
STATION = r"""
import json, random, sys, time
from pathlib import Path
from bwc.evidence import custody
from bwc.evidence.station import Station

home, seconds = Path(sys.argv[1]), float(sys.argv[2])
st = Station.open(home, actor=home.name, passphrase=None)
rng = random.Random(home.name)
real_make = custody.make_checkpoint
under_lock = []

def timed_make(*a, **k):
    t = time.perf_counter()
    try:
        return real_make(*a, **k)
    finally:
        under_lock.append(time.perf_counter() - t)

custody.make_checkpoint = timed_make
appended, commits, whole = 0, 0, []
print("READY", flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    k = rng.randint(1, 20)
    evs = [st.event("viewed", "%064x" % rng.getrandbits(256), n=appended + i) for i in range(k)]
    with st.session() as s:
        custody.append_events(s, evs)
    appended += k
    commits += 1
    if commits % 5 == 0:
        t = time.perf_counter()
        st.checkpoint()
        whole.append(time.perf_counter() - t)
print(json.dumps({"appended": appended, "commits": commits, "whole": whole,
                  "under_lock": under_lock}), flush=True)
"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))] if xs else 0.0


def bwc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BWC), *args], env=env, capture_output=True, text=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=11)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--catalog", default=None, help="a PostgreSQL URL (default: a fresh db)")
    ap.add_argument("--home", type=Path, default=ROOT / "bench" / "out" / "stations")
    args = ap.parse_args()
    made = None
    catalog = args.catalog
    if catalog is None:
        made, catalog = fresh_database()
    try:
        run(args, catalog)
    finally:
        if made is not None:
            drop_database(made)


def run(args: argparse.Namespace, catalog: str) -> None:
    import shutil

    if args.home.exists():
        shutil.rmtree(args.home)
    args.home.mkdir(parents=True)
    store = (args.home / "city-store").as_uri()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env |= {"BWC_CATALOG": catalog, "BWC_STORE": store, "BWC_LOG_ORIGIN": "bwc/city"}
    homes = [args.home / f"bureau-{i:02d}" for i in range(args.stations)]
    for h in homes:
        r = bwc(env, "--home", str(h), "init", "--station-id", h.name)
        if r.returncode != 0:
            raise SystemExit(f"init failed: {r.stderr}")
    procs = [
        subprocess.Popen(
            [str(PY), "-c", STATION, str(h), str(args.seconds)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in homes
    ]
    for p in procs:
        if p.stdout is None or p.stdout.readline().strip() != "READY":
            raise SystemExit("a station did not start")
    print(f"{args.stations} stations appending for {args.seconds:.0f} s; one killed half-way")
    time.sleep(args.seconds / 2)
    os.kill(procs[-1].pid, signal.SIGKILL)
    results: list[dict[str, Any]] = []
    for p in procs[:-1]:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a station failed: {err[-1500:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    procs[-1].wait()
    appended = sum(r["appended"] for r in results)
    whole = [x for r in results for x in r["whole"]]
    locked = [x for r in results for x in r["under_lock"]]
    t = time.perf_counter()
    r = bwc(env, "--home", str(homes[0]), "log", "verify", "--json")
    verify_s = time.perf_counter() - t
    log = json.loads(r.stdout)
    r2 = bwc(env, "--home", str(homes[1]), "log", "verify", "--from-store", store)
    import psycopg

    dbname = catalog.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}") as conn:
        counts = dict(conn.execute("SELECT actor, count(*) FROM event GROUP BY actor").fetchall())
    lost = [h.name for h, x in zip(homes, results, strict=False) if counts[h.name] != x["appended"]]
    out = {
        "stations": args.stations,
        "seconds": args.seconds,
        "events_appended_by_survivors": appended,
        "events_in_log": log["size"],
        "events_per_second_all_stations": log["size"] / args.seconds,
        "checkpoints": len(whole),
        "checkpoint_whole_p50_ms": 1000 * statistics.median(whole),
        "checkpoint_whole_p99_ms": 1000 * pct(whole, 0.99),
        "checkpoint_whole_max_ms": 1000 * max(whole),
        "checkpoint_lock_p50_ms": 1000 * statistics.median(locked),
        "checkpoint_lock_p99_ms": 1000 * pct(locked, 0.99),
        "checkpoint_lock_max_ms": 1000 * max(locked),
        "log_verify_ok": bool(log["ok"]),
        "log_verify_problems": log["problems"][:5],
        "log_verify_seconds": verify_s,
        "store_copy_verifies": r2.returncode == 0,
        "stations_with_lost_events": lost,
    }
    for k, v in out.items():
        print(f"  {k:<32} {v:,.1f}" if isinstance(v, float) else f"  {k:<32} {v}")
    print("JSON", json.dumps(out))
    if not (out["log_verify_ok"] and out["store_copy_verifies"] and not lost):
        raise SystemExit("FAILED: see above")


if __name__ == "__main__":
    main()
