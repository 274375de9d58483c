"""F1 lists from QR check-ins at national scale (part of `make bench`).

    .venv/bin/python scripts/bench_tracing.py --checkins 10000000 --cases 100 --runs 3

Generated: `checkins` check-ins over 14 days, in 14 daily Parquet files as the import stores them, by 2 million people
at 50,000 venues (a few busy ones: markets, hospitals); a third without a check-out. `cases` cases among the people
who checked in, each infectious for 4 to 7 days. Measured, each in a child process whose peak memory the parent reads:

1. the derivation as `outreach f1 derive` runs it: cases file in, the query on DuckDB, the F1s folded, the contact
   list imported into a new SQLite store. Goal: under 10 s and under 2 GB.
2. an import of `import_rows` check-ins from a CSV as a province exports them (local times, phones in mixed forms),
   as `outreach checkins import` runs it.

Each figure is the median of `runs` runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
DAYS, PEOPLE, VENUES = 14, 2_000_000, 50_000
FIRST_DAY = date(2021, 6, 1)
GOAL_S, GOAL_MB = 10.0, 2048

DERIVE = """
import json, sys, time
from pathlib import Path
from access.auth import operator
from ground.settings import Settings
from ground.store import make_engine, make_session_factory
from models.migrate import upgrade
from campaigns.importer import ReadLimits
from tracing.copresence import derive_f1, read_cases
settings = Settings(database_url=sys.argv[1], checkins_dir=Path(sys.argv[2]))
engine = make_engine(settings.database_url)
upgrade(engine)
started = time.perf_counter()
cases = read_cases(Path(sys.argv[3]), ReadLimits())
sessions = make_session_factory(engine)
derivation = derive_f1(sessions, operator(), settings, cases, "bench", source="cases", province="27")
print(json.dumps({"seconds": time.perf_counter() - started, "query": derivation.seconds,
                  "f1": len(derivation.f1s), "listed": derivation.contact_list.imported}))
"""

IMPORT = """
import json, sys, time
from pathlib import Path
from access.auth import operator
from ground.settings import Settings
from ground.store import make_engine, make_session_factory
from models.migrate import upgrade
from tracing.checkins import import_checkins
settings = Settings(database_url=sys.argv[1], checkins_dir=Path(sys.argv[2]))
engine = make_engine(settings.database_url)
upgrade(engine)
started = time.perf_counter()
summary = import_checkins(make_session_factory(engine), operator(), Path(sys.argv[3]), settings)
print(json.dumps({"seconds": time.perf_counter() - started, "imported": summary.imported,
                  "rejected": summary.rejected}))
"""


def phones_of(people: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise("+8490", pc.utf8_lpad(pc.cast(pa.array(people), pa.string()), 7, "0"), "")


def checkins_table(rows: int, day: int, rng: np.random.Generator) -> pa.Table:
    """One day's check-ins: venues by popularity (a few very busy), people at random, times from 6:00 to 22:00."""
    venues = (VENUES * rng.random(rows) ** 3).astype(np.int64)
    people = rng.integers(0, PEOPLE, rows)
    midnight = int(datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), UTC).timestamp() * 1e6)
    arrived = midnight + rng.integers(-1 * 3600, 15 * 3600, rows) * 1_000_000  # 6:00 to 22:00 in Hà Nội (UTC+7)
    stayed = rng.integers(5, 180, rows) * 60_000_000
    left = np.where(rng.random(rows) < 1 / 3, -1, arrived + stayed)
    return pa.table(
        {
            "venue_id": pc.binary_join_element_wise("V", pc.cast(pa.array(venues), pa.string()), ""),
            "phone": phones_of(people),
            "checked_in_at": pa.array(arrived, pa.timestamp("us", tz="UTC")),
            "checked_out_at": pa.array(left, pa.timestamp("us", tz="UTC"), mask=left < 0),
        }
    )


def generate(folder: Path, rows: int, cases: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    checkins = folder / "checkins"
    checkins.mkdir()
    seen = []
    for day in range(DAYS):
        table = checkins_table(rows // DAYS, day, rng)
        pq.write_table(table, checkins / f"day-{day:02d}.parquet", compression="zstd")
        seen.append(table.column("phone").slice(0, cases))
    phones = pc.unique(pa.chunked_array(seen)).to_pylist()
    chosen = rng.choice(len(phones), cases, replace=False)
    starts = rng.integers(0, DAYS - 4, cases)
    lengths = rng.integers(4, 8, cases)
    with (folder / "cases.csv").open("w") as sink:
        sink.write("phone,infectious_from,infectious_to,case_code\n")
        for n, (index, start, length) in enumerate(zip(chosen, starts, lengths, strict=True)):
            first = FIRST_DAY + timedelta(days=int(start))
            sink.write(f"{phones[index]},{first},{first + timedelta(days=int(length) - 1)},BN{n:05d}\n")
    return folder / "cases.csv"


def province_csv(path: Path, rows: int, seed: int) -> Path:
    """Check-ins as a province's spreadsheet holds them: local times, phones written four ways."""
    rng = np.random.default_rng(seed)
    table = checkins_table(rows, 0, rng)
    local = pc.strftime(pc.add(table.column("checked_in_at"), pa.scalar(7 * 3600 * 1_000_000, pa.duration("us"))))
    digits = pc.utf8_slice_codeunits(table.column("phone"), 3)  # 90xxxxxxx
    forms = rng.integers(0, 4, rows)
    written = pc.case_when(
        pc.make_struct(pa.array(forms == 0), pa.array(forms == 1), pa.array(forms == 2)),
        pc.binary_join_element_wise("0", digits, ""),
        pc.binary_join_element_wise("84", digits, ""),
        pc.binary_join_element_wise(
            "0", pc.utf8_slice_codeunits(digits, 0, 2), " ", pc.utf8_slice_codeunits(digits, 2), ""
        ),
        table.column("phone"),
    )
    out = pa.table({"venue_id": table.column("venue_id"), "phone": written, "checked_in_at": local})
    pacsv.write_csv(out, path)
    return path


def in_child(code: str, *args: str) -> tuple[dict, float]:
    """Run `code` in a new Python; its JSON output and its peak memory (MB)."""
    child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"the child failed ({child.returncode})")
    return json.loads(output), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkins", type=int, default=10_000_000)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        cases = generate(folder, options.checkins, options.cases, seed=1)
        size = sum(f.stat().st_size for f in (folder / "checkins").iterdir()) / 1e6
        print(f"F1 derivation: {options.checkins:,} check-ins ({size:.0f} MB of Parquet in {DAYS} files), "
              f"{options.cases} cases; generated in {time.perf_counter() - started:.0f} s")  # fmt: skip
        runs = []
        for run in range(options.runs):
            store = f"sqlite:///{folder / f'derive-{run}.db'}"
            figures, peak = in_child(DERIVE, store, str(folder / "checkins"), str(cases))
            runs.append((figures["seconds"], figures["query"], peak, figures["f1"], figures["listed"]))
            print(f"  run {run + 1}: {figures['seconds']:.2f} s (query {figures['query']:.2f} s), peak {peak:.0f} MB")
        seconds, query, peak = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"  F1s found: {runs[0][3]:,}, listed as new people: {runs[0][4]:,}")
        print(
            f"  median of {options.runs}: {seconds:.2f} s end to end (query and fold {query:.2f} s), peak {peak:.0f} MB"
        )
        print(f"  against the goal: time {seconds / GOAL_S:.2f} of {GOAL_S:.0f} s, memory {peak / GOAL_MB:.2f} of 2 GB")

        csv_file = province_csv(folder / "province.csv", options.import_rows, seed=2)
        print(f"\nCheck-in import: {options.import_rows:,} rows of CSV ({csv_file.stat().st_size / 1e6:.0f} MB)")
        imports = []
        for run in range(options.runs):
            store = f"sqlite:///{folder / f'import-{run}.db'}"
            figures, peak = in_child(IMPORT, store, str(folder / f"imported-{run}"), str(csv_file))
            imports.append((figures["seconds"], peak))
            print(f"  run {run + 1}: {figures['seconds']:.2f} s, {figures['imported']:,} imported, "
                  f"{figures['rejected']} rejected, peak {peak:.0f} MB")  # fmt: skip
        seconds, peak = (statistics.median(r[i] for r in imports) for i in range(2))
        rate = options.import_rows / seconds
        print(f"  median of {options.runs}: {seconds:.2f} s ({rate:,.0f} rows/s), peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
