"""The custody log at city scale (issue 13): commands that cost by item, not by the log's age.

Builds, for each size asked, a home whose log holds N custody events and M real items,
through bwc's own append path (in process, in batches; real tiles, real checkpoints, the
store's published copy), leaves it under --home for inspection, then times each command a
legal officer or a station runs about one item, the whole-log checks and a month's audit,
each a fresh `bwc` process (median of --reps runs, with its peak RSS). Prints a table and
the same figures as JSON; with several sizes, the ratio of each command's time at the
largest size to its time at the smallest.

  python bench/scale.py --events 10000,1000000 --home /tmp/scale
  python bench/scale.py --events 10000,1000000 --postgres --home /tmp/pg

--postgres gives each size a fresh database on the local server (127.0.0.1:5432, user
postgres), dropped at the end; --catalog URL uses one you made (one size per database).

Targets (issue 13, on this 2-core machine): each per-item command at 10 M events <= 1.3 x
its time at 10 k; peak RSS <= 150 MB; the head lock held <= 50 ms per append batch or
checkpoint; appends >= 20,000 events/s; `log verify` >= 100,000 events/s with peak RSS
<= 200 MB. Catalog and store bytes per event are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, drop_database, fresh_database, run

ROOT = Path(__file__).resolve().parents[1]
PY = ROOT / ".venv" / "bin" / "python"
BATCH = 1000  # events a batch: what a busy station's commits look like, and short locks
CHECKPOINT_EVERY = 50_000  # events between checkpoints while building (the daemon's pace)
OFFICERS = ["110023", "110024", "110025"]

# The builder runs in a fresh interpreter: bwc's append path, in process, timed per batch.
BUILDER = r"""
import json, random, sys, time
from pathlib import Path
from bwc.evidence import custody
from bwc.evidence.station import Station

home, target, batch, every = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
items = json.loads(sys.argv[5])
st = Station.open(home, actor="bench-clerk", passphrase=None)
locks, cps, cp_locks = [], [], []
real_lock = custody.lock_head
held = {}

def timed_lock(session):
    held["t"] = time.perf_counter()
    return real_lock(session)

custody.lock_head = timed_lock
# when COMMIT starts: lock -> here is the append's own work; here -> return is the commit
# (WAL write and fsync; on SQLite also a WAL checkpoint now and then, which SQLite runs
# after the write lock is released)
from sqlalchemy import event as sa_event
sa_event.listen(st.engine, "commit", lambda conn: held.__setitem__("c", time.perf_counter()))
works = []
with st.session() as s:
    size = custody.log_size(s)
rng = random.Random(size)
# the rest of a city's log: other items' events (a real item has a handful), docking
kinds = ["seen-again", "viewed", "viewed", "verified", "docked", "undocked", "exported"]
t0 = time.perf_counter()
appended = 0
while size < target:
    n = min(batch, target - size)
    evs = []
    for i in range(n):
        kind = rng.choice(kinds)
        other = None if kind in ("docked", "undocked") else "%064x" % rng.getrandbits(256)
        evs.append(st.event(kind, other, n=size + i))
    with st.session() as s:
        custody.append_events(s, evs)
    locks.append(time.perf_counter() - held["t"])  # from the lock to the commit's return
    works.append(held["c"] - held["t"])
    size += n
    appended += n
    if size % every < batch or size == target:
        t = time.perf_counter()
        st.checkpoint()
        cps.append(time.perf_counter() - t)
dt = time.perf_counter() - t0
# one checkpoint more, its lock alone (no new tiles to publish but its own)
with st.session() as s:
    custody.append_events(s, [st.event("viewed", items[0], reason="bench")])
signer = st.signer()
with st.session() as s:
    t = time.perf_counter()
    custody.make_checkpoint(s, signer, st.station_id, st.clock.now())
cp_locks.append(time.perf_counter() - t)
st.checkpoint()
print(json.dumps({
    "appended": appended, "seconds": dt, "locks": sorted(locks)[-5:] if locks else [],
    "lock_p50": statistics.median(locks) if locks else 0,
    "lock_p99": sorted(locks)[int(0.99 * (len(locks) - 1))] if locks else 0,
    "work_p50": statistics.median(works) if works else 0,
    "work_max": max(works) if works else 0,
    "lock_max": max(locks) if locks else 0, "checkpoints": len(cps),
    "checkpoint_max": max(cps) if cps else 0, "checkpoint_lock": max(cp_locks),
}))
""".replace("statistics.median", "__import__('statistics').median")


def bwc_env(home: Path, catalog: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env["BWC_HOME"] = str(home)
    env["BWC_ACTOR"] = "bench-clerk"
    if catalog:
        env["BWC_CATALOG"] = catalog
    return env


def sh(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({r.returncode}): {r.stderr[-800:]}")
    return r


def build(home: Path, events: int, items: int, catalog: str | None) -> dict[str, Any]:
    env = bwc_env(home, catalog)
    if not (home / "bwc.toml").exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        sh([str(BWC), "init", "--station-id", "st-scale"], env)
        cam = home.parent / f"{home.name}-camera"
        cam.mkdir(exist_ok=True)
        for i in range(items):
            day, minute = 1 + i % 28, i % 600
            when = f"202610{day:02d}{9 + minute // 60:02d}{minute % 60:02d}00"
            name = f"DSJ{i % 7:04d}_{OFFICERS[i % 3]}_{when}_{i:04d}.TXT"
            (cam / name).write_text(f"item {i}\n")
        sh([str(BWC), "ingest", str(cam)], env)
        data = home.parent / f"{home.name}-audit"
        data.mkdir(exist_ok=True)
        (data / "officers.csv").write_text(
            "officer_id,name,unit,county,frontline\n"
            + "".join(f"{o},Officer {o},Team 1,Huangpu,true\n" for o in OFFICERS)
        )
        (data / "cases.csv").write_text(
            "case_id,category,unit,officers,start,end,location\n"
            "C1,parking,Team 1,110023;110024,2026-10-01 09:00:00,2026-10-01 09:30:00,Road 1\n"
        )
        sh([str(BWC), "audit", "import", "officers", str(data / "officers.csv")], env)
        sh([str(BWC), "audit", "import", "cases", str(data / "cases.csv")], env)
    listed = json.loads(sh([str(BWC), "list", "--json"], env).stdout)
    shas = [i["sha256"] for i in listed]
    t = time.perf_counter()
    r = sh(
        [
            str(PY),
            "-c",
            BUILDER,
            str(home),
            str(events),
            str(BATCH),
            str(CHECKPOINT_EVERY),
            json.dumps(shas),
        ],
        env,
    )
    built = json.loads(r.stdout)
    built["wall"] = time.perf_counter() - t
    built["items"] = shas
    return built


def sizes_of(home: Path, catalog: str | None, events: int) -> dict[str, float]:
    store = home / "store"
    log_bytes = sum(p.stat().st_size for p in (store / "log").rglob("*") if p.is_file())
    out = {"store_log_bytes_per_event": log_bytes / events}
    if catalog is None:
        total = sum(p.stat().st_size for p in home.glob("catalog.sqlite*"))
    else:  # the whole database: tables, indexes, TOAST
        import psycopg

        url = catalog.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        total = int(row[0]) if row else 0
    out["catalog_bytes_per_event"] = total / events
    return out


def measure(home: Path, catalog: str | None, shas: list[str], reps: int) -> dict[str, Any]:
    env = bwc_env(home, catalog)
    cam = home.parent / f"{home.name}-new"
    cam.mkdir(exist_ok=True)
    a, b = shas[0], shas[1]
    counter = {"n": 0}

    def new_clip() -> str:
        counter["n"] += 1
        p = cam / f"DSJ0099_110025_20261020100000_{counter['n']:04d}.TXT"
        p.write_text(f"new {counter['n']} {time.time()}\n")
        return str(p)

    # a home measured before may have been left with the item on hold (odd --reps)
    subprocess.run(
        [str(BWC), "release", a[:16], "--reason", "bench"],
        env=env,
        capture_output=True,
        check=False,
    )
    held = {"on": False}

    def hold_or_release() -> list[str]:
        held["on"] = not held["on"]
        verb = "hold" if held["on"] else "release"
        return [verb, a[:16], "--reason", "bench"]

    classes = iter(["evidence", "obstruction", "major-incident", "mass-incident"] * 10)
    officers = iter([f"1200{i:02d}" for i in range(100)])
    commands: dict[str, Any] = {
        "show": lambda: ["show", a[:16], "--json"],
        "log proof": lambda: ["log", "proof", a[:16], "--json"],
        "verify ID": lambda: ["verify", a[:16], "--no-record"],
        "ingest 1 file": lambda: ["ingest", new_clip()],
        "log checkpoint": lambda: ["log", "checkpoint"],
        "hold/release": hold_or_release,
        "classify": lambda: ["classify", b[:16], "--class", next(classes), "--reason", "bench"],
        "attribute": lambda: ["attribute", a[:16], "--officer", next(officers), "--reason", "b"],
        "audit explain": lambda: ["audit", "explain", "C1", "110024", "--reason", "battery"],
        "log verify": lambda: ["log", "verify"],
        "verify --all": lambda: ["verify", "--all", "--no-record"],
        "audit report": lambda: ["audit", "report", "--month", "2026-10", "--format", "json"],
    }
    out: dict[str, Any] = {}
    for name, args in commands.items():
        times, rss = [], []
        for _ in range(reps):
            w, r = run([str(BWC), *args()], env=env)
            times.append(w)
            rss.append(r)
        out[name] = {"seconds": statistics.median(times), "rss_mb": max(rss) / 1024}
        print(
            f"  {name:<16} {out[name]['seconds']:7.3f} s  {out[name]['rss_mb']:6.0f} MB", flush=True
        )
    if held["on"]:
        sh([str(BWC), "release", a[:16], "--reason", "bench"], env)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", default="10000,1000000", help="sizes, comma-separated")
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--catalog", default=None, help="catalog URL (default: SQLite in the home)")
    ap.add_argument("--postgres", action="store_true", help="a fresh local database per size")
    ap.add_argument("--home", type=Path, default=ROOT / "bench" / "out" / "scale")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fresh", action="store_true", help="build the homes anew")
    args = ap.parse_args()
    sizes = [int(x) for x in args.events.split(",")]
    if args.catalog and len(sizes) > 1:
        ap.error("--catalog takes one size (each size needs its own empty database)")
    made: list[str] = []
    try:
        results = run_sizes(args, sizes, made)
    finally:
        for name in made:
            drop_database(name)
    ns = sorted(results)
    if len(ns) > 1:
        lo, hi = results[ns[0]]["commands"], results[ns[-1]]["commands"]
        print(f"== time at {ns[-1]:,} / time at {ns[0]:,} events (target <= 1.3 per item)")
        for name in lo:
            print(f"  {name:<16} {hi[name]['seconds'] / lo[name]['seconds']:5.2f}")
    print("JSON " + json.dumps(results))


def run_sizes(args: argparse.Namespace, sizes: list[int], made: list[str]) -> dict[int, Any]:
    results: dict[int, Any] = {}
    for n in sizes:
        catalog = args.catalog
        if args.postgres:
            name, catalog = fresh_database()
            made.append(name)
        home = args.home / f"home-{n}"
        if (args.fresh or args.postgres) and home.parent.exists():  # a new db: a new home
            for p in home.parent.glob(f"home-{n}*"):
                shutil.rmtree(p)
        print(f"== {n:,} events", flush=True)
        built = build(home, n, args.items, catalog)
        rate = built["appended"] / built["seconds"] if built["appended"] else 0
        print(
            f"  built: {built['appended']:,} events appended at {rate:,.0f}/s; head lock per "
            f"batch of {BATCH} (lock to commit returned): p50 {1000 * built['lock_p50']:.1f} "
            f"ms, p99 {1000 * built['lock_p99']:.1f} ms, max {1000 * built['lock_max']:.1f} "
            f"ms (before COMMIT: p50 {1000 * built['work_p50']:.1f} ms, max "
            f"{1000 * built['work_max']:.1f} ms); checkpoint under the lock "
            f"{1000 * built['checkpoint_lock']:.1f} ms",
            flush=True,
        )
        m = measure(home, catalog, built["items"], args.reps)
        verify_rate = n / m["log verify"]["seconds"]
        footprint = sizes_of(home, catalog, n)
        print(f"  log verify: {verify_rate:,.0f} events/s (whole command)")
        for k, v in footprint.items():
            print(f"  {k}: {v:,.0f}")
        built.pop("items")
        results[n] = {
            "build": built,
            "commands": m,
            "sizes": footprint,
            "log_verify_rate": verify_rate,
        }
    return results


if __name__ == "__main__":
    main()
