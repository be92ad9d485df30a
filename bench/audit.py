"""Monthly coverage audit speed on a synthetic city-month, measured in the same run:

  (a) reading exactly the rows the audit needs (the same queries bwc runs: items in the
      month's window, the month's cases and their officers, the roster, the ledger and clock
      measurements), with Python's stdlib sqlite3, raw values, in a fresh process;
  (a') the same with the larger SQLite page cache bwc uses for this read;
  (b) the whole `bwc audit report --month 2026-10 --format csv`, in a fresh process, which
      first checks every input row (roster, cases, ledger, clock checks, explanations)
      against the custody log (the synthetic rows are sealed once with `bwc audit seal`).

Prints absolute times (medians), ratio b / a (target <= 2) and the peak RSS of (b)
(target <= 1.5 GB). The city: 10 counties, 2,000 officers, 1,000 shared cameras (a checkout
ledger, half a day each), 200,000 cases with 1-3 officers, 2,000,000 clips (camera clocks off
by up to ±30 s, 30 % of clips without an officer id: the ledger attributes them). The catalog
is made once per --scale under --work and reused; both (a) and (b) read it warm (a warm-up
read first), so the comparison is about the audit's own work, not the disk.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, run

MONTH = "2026-10"
TZ = 8 * 3600  # Asia/Shanghai, no DST
M0 = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()) - TZ  # local midnight, in UTC
DAYS = 31
COUNTIES, UNITS_PER_COUNTY, PER_UNIT = 10, 5, 40


class Fmt:
    """Epoch seconds -> the catalog's SQLite text form, fast (cached days and times)."""

    def __init__(self, base: int, days: int) -> None:
        self.base = base - 3 * 86400
        start = datetime.fromtimestamp(self.base, UTC)
        self.days = [(start + timedelta(days=i)).strftime("%Y-%m-%d ") for i in range(days + 6)]
        self.tod = [
            f"{h:02d}:{m:02d}:{s:02d}.000000"
            for h in range(24)
            for m in range(60)
            for s in range(60)
        ]

    def __call__(self, t: int) -> str:
        d, r = divmod(t - self.base, 86400)
        return self.days[d] + self.tod[r]


def generate(catalog: Path, scale: float, seed: int = 5) -> dict[str, int]:
    rnd = random.Random(seed)
    n_officers = max(int(2000 * scale), 20)
    n_cases = int(200_000 * scale)
    n_clips = int(2_000_000 * scale)
    fmt = Fmt(M0, DAYS)
    con = sqlite3.connect(catalog, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    con.execute("BEGIN")

    officers = [f"O{i:05d}" for i in range(n_officers)]
    units: dict[str, list[int]] = {}
    rows = []
    for i, oid in enumerate(officers):
        county = i * COUNTIES // n_officers
        unit = f"C{county:02d}-U{(i // PER_UNIT) % UNITS_PER_COUNTY}"
        units.setdefault(unit, []).append(i)
        rows.append((oid, f"Officer {i}", unit, f"County {county:02d}", rnd.random() < 0.9))
    con.executemany(
        "INSERT INTO officer (officer_id, name, unit, county, frontline) VALUES (?,?,?,?,?)", rows
    )
    # officer 2d and 2d+1 share camera d: the even one holds it mornings, the odd one afternoons
    devices = [f"DSJ{d:05d}" for d in range((n_officers + 1) // 2)]
    offset = {d: rnd.randint(-30, 30) for d in devices}
    rows = []
    for d, dev in enumerate(devices):
        for day in range(DAYS):
            for half in (0, 1):
                oid_i = 2 * d + half
                if oid_i < n_officers:
                    s = M0 + day * 86400 + half * 43200
                    rows.append((officers[oid_i], dev, fmt(s), fmt(s + 43200), "bench"))
    con.executemany(
        'INSERT INTO assignment (officer_id, device_id, start, "end", source) VALUES (?,?,?,?,?)',
        rows,
    )
    rows = []
    for dev in devices:
        for day in (2, 12, 22):
            rows.append((dev, offset[dev] * 1000, fmt(M0 + day * 86400 + 20 * 3600), "bench"))
    con.executemany(
        "INSERT INTO device_clock (device_id, offset_ms, measured_at, recorded_by) "
        "VALUES (?,?,?,?)",
        rows,
    )

    unit_names = sorted(units)
    cases = []
    links = []
    pairs: list[tuple[int, int, int]] = []  # officer index, start, end (true time)
    for c in range(n_cases):
        day, half = rnd.randrange(DAYS), rnd.randrange(2)
        length = rnd.randint(300, 2400)
        s = M0 + day * 86400 + half * 43200 + rnd.randint(600, 43200 - length - 600)
        unit = rnd.choice(unit_names)
        crew = [i for i in units[unit] if i % 2 == half] or units[unit]
        members = rnd.sample(crew, min(len(crew), rnd.choice((1, 2, 2, 3))))
        cid = f"K{c:07d}"
        cases.append((cid, "占道经营", unit, fmt(s), fmt(s + length), "bench"))
        for i in members:
            links.append((cid, officers[i]))
            pairs.append((i, s, s + length))
    con.executemany(
        'INSERT INTO enforcement_case (case_id, category, unit, start, "end", location) '
        "VALUES (?,?,?,?,?,?)",
        cases,
    )
    con.executemany("INSERT INTO case_officer (case_id, officer_id) VALUES (?,?)", links)

    # clips as (officer index, true start, true end, ingest delay, officer id known)
    made: list[tuple[int, int, int, int, bool]] = []

    def clip(i: int, s: int, e: int) -> None:
        if len(made) < n_clips:
            late = (
                rnd.randint(1800, 20 * 3600)
                if rnd.random() < 0.93
                else rnd.randint(86400, 3 * 86400)
            )
            made.append((i, s, e, late, rnd.random() < 0.7))

    for i, s, e in pairs:
        r = rnd.random()
        if r < 0.1:
            continue  # nothing recorded
        t = s - rnd.randint(0, 60)
        stop = e + rnd.randint(0, 60)
        if r < 0.25:  # partial: starts late or pauses for minutes
            if rnd.random() < 0.5:
                t = s + rnd.randint(120, 600)
            else:
                mid = (s + e) // 2
                clip(i, t, mid)
                t = mid + rnd.randint(60, 300)
        while t < stop:
            n = min(rnd.randint(180, 600), stop - t)
            clip(i, t, t + n)
            t += n + rnd.randint(0, 3)
    while len(made) < n_clips:  # patrol footage, in the officer's half-days
        i = rnd.randrange(n_officers)
        s = M0 + rnd.randrange(DAYS) * 86400 + (i % 2) * 43200 + rnd.randint(0, 42000)
        clip(i, s, s + rnd.randint(60, 600))
    # rows are appended in ingest order, as stations do
    made.sort(key=lambda c: c[2] + c[3])
    sql = (
        "INSERT INTO item (sha256, size, manifest, signature, key_id, station_id, "
        "original_path, device_id, officer_id, recorded_start, recorded_end, ingested_at, flags) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for b0 in range(0, len(made), 100_000):
        batch = []
        for n, (i, s, e, late, known) in enumerate(made[b0 : b0 + 100_000], start=b0):
            dev = devices[i // 2]
            off = offset[dev]
            batch.append(
                (
                    f"{n:064x}",
                    1,
                    b"",
                    b"",
                    "bench",
                    "bench",
                    f"DCIM/{n}.MP4",
                    dev,
                    officers[i] if known else None,
                    fmt(s + off),
                    fmt(e + off),
                    fmt(e + late),
                    "",
                )
            )
        con.executemany(sql, batch)
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()
    return {"officers": n_officers, "cases": n_cases, "pairs": len(links), "clips": len(made)}


READ_A = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1])
    lo, hi, lo_end, m0, m1, c0, c1, cache = sys.argv[2:10]
    if cache != "default":
        con.execute(f"PRAGMA cache_size = -{cache}")
    n = 0
    for q, p in [
        ("SELECT officer_id, device_id, recorded_start, recorded_end, ingested_at FROM item "
         "WHERE recorded_start >= ? AND recorded_start < ? "
         "AND coalesce(recorded_end, recorded_start) >= ?", (lo, hi, lo_end)),
        ("SELECT officer_id, name, unit, county, frontline FROM officer", ()),
        ("SELECT case_id, category, unit, start, \\"end\\", location FROM enforcement_case "
         "WHERE \\"end\\" > ? AND start < ?", (m0, m1)),
        ("SELECT co.case_id, co.officer_id FROM case_officer co JOIN enforcement_case ec "
         "ON ec.case_id = co.case_id WHERE ec.\\"end\\" > ? AND ec.start < ?", (m0, m1)),
        ("SELECT officer_id, device_id, start, \\"end\\" FROM assignment "
         "WHERE start < ? AND (\\"end\\" IS NULL OR \\"end\\" > ?)", (c1, c0)),
        ("SELECT device_id, offset_ms, measured_at FROM device_clock "
         "WHERE measured_at >= ? AND measured_at < ?", (c0, c1)),
    ]:
        for row in con.execute(q, p):
            n += 1
    print(n)
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full city-month")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args()

    home = args.work / f"audit-home-{args.scale:g}"
    catalog = home / "catalog.sqlite"
    env = {**os.environ, "BWC_HOME": str(home), "BWC_ACTOR": "bench"}
    env.pop("BWC_KEY_PASSPHRASE", None)
    if not (home / ".generated").exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        subprocess.run(
            [str(BWC), "init", "--station-id", "bench"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        t0 = time.perf_counter()
        counts = generate(catalog, args.scale)
        print(f"generated {counts} in {time.perf_counter() - t0:.0f} s")
        (home / ".generated").write_text(repr(counts))
    else:
        print(f"reusing {home}: {(home / '.generated').read_text()}")
    # the rows were written straight to the catalog: log them once, as for a catalog from
    # before inputs were logged (the report checks every input row against the log)
    t0 = time.perf_counter()
    subprocess.run([str(BWC), "audit", "seal"], env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"bwc audit seal: {time.perf_counter() - t0:.1f} s")

    # the same bounds bwc computes (bwc.audit.catalog.read_inputs), in the stored text form
    fmt = Fmt(M0, DAYS)
    con = sqlite3.connect(catalog)
    maxoff = con.execute("SELECT max(abs(offset_ms)) FROM device_clock").fetchone()[0] or 0
    last_end = con.execute(
        'SELECT max("end") FROM enforcement_case WHERE start >= ? AND start < ?',
        (fmt(M0), fmt(M0 + DAYS * 86400)),
    ).fetchone()[0]
    con.close()
    m0, m1 = M0, M0 + DAYS * 86400
    lo = m0 - 6  # max_gap 5 s + 1 s
    hi = max(m1, int(datetime.fromisoformat(last_end + "+00:00").timestamp()))
    lo_dev, hi_dev = lo - maxoff // 1000 - 1, hi + maxoff // 1000 + 1
    bounds = [
        fmt(lo_dev - 86400),
        fmt(hi_dev),
        fmt(lo_dev),
        fmt(m0),
        fmt(m1),
        fmt(lo_dev - 86400 - maxoff // 1000 - 1),
        fmt(hi_dev + maxoff // 1000 + 1),
    ]
    read_a = [sys.executable, "-c", READ_A, str(catalog), *bounds, "default"]
    # (a'): the same, with the page cache bwc sets for this read (bwc.audit.catalog)
    read_a2 = [*read_a[:-1], str(64 * 1024)]
    report_b = [str(BWC), "audit", "report", "--month", MONTH, "--format", "csv"]

    rows = subprocess.run(read_a, capture_output=True, text=True, check=True).stdout.strip()
    print(f"(a) reads {int(rows):,} rows")
    csv_out = subprocess.run(report_b, env=env, capture_output=True, text=True, check=True)
    print(f"(b) prints {len(csv_out.stdout.splitlines()) - 1:,} officer rows")

    # (a) and (b) alternate, so both see the same machine (it may be shared and noisy)
    times_a: list[float] = []
    times_a2: list[float] = []
    times_b: list[float] = []
    rss: list[int] = []

    def warm() -> None:  # other benchmarks on the machine may drop the page cache
        with open(catalog, "rb") as f:
            while f.read(1 << 20):
                pass

    for _ in range(args.reps):
        warm()
        times_a.append(run(read_a)[0])
        warm()
        times_a2.append(run(read_a2)[0])
        warm()
        wall, peak = run(report_b, env=env)
        times_b.append(wall)
        rss.append(peak)
    ta, tb = statistics.median(times_a), statistics.median(times_b)
    ta2 = statistics.median(times_a2)
    print(f"(a) read the rows the audit needs: {ta:.2f} s")
    print(f"(a') the same with a 64 MB SQLite page cache (as bwc reads): {ta2:.2f} s")
    print(f"(b) bwc audit report --format csv: {tb:.2f} s")
    print(
        f"ratio b / a = {tb / ta:.2f} (target <= 2); per run: "
        + ", ".join(f"{b / a:.2f}" for a, b in zip(times_a, times_b, strict=True))
    )
    print(f"ratio b / a' = {tb / ta2:.2f}")
    print(f"peak RSS of (b): {max(rss) / 1024:.0f} MB (target <= 1536 MB)")


if __name__ == "__main__":
    main()
