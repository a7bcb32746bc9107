"""What a live hourly run costs: the full run against its SQL floor and pandas, and what a state file saves.

    python -m benchmarks.incremental --rows 1e7,1e8 --repeats 3
    python -m benchmarks.incremental --rows 1e9 --repeats 1

For each size, a 14-day log (``xpyrment_sql.synthetic``) is split at the start of its last hour into
two Parquet files in one folder, read as one glob (the last hour's file is moved aside while the
state is first built, as a log grows). The split log is kept under ``--data`` and reused. Each
measurement is a fresh process started through ``benchmarks/launch.py`` (its wall time, imports
included, and its own peak RSS):

* **full**: the default ``run_telemetry_checks`` at hourly bins over the whole log, no state: what
  every hourly run costs without one (traffic matrix, drop test, SRM tests and multiple exposure);
* **SQL floor** (up to ``--floor-up-to`` rows): the same counts written by hand in DuckDB SQL, one
  statement (active units deduplicated one time range at a time as in ``baselines/duckdb_sql.py``,
  first exposures grouped once and materialized, units under several variants and per pair of
  variants from them), timed around the query alone;
* **its query alone** (up to ``--floor-up-to`` rows): the full run's traffic-matrix query, compiled before the
  clock starts and timed around its execution as the floor is, so the two compare query with query
  and the full run's remainder is what it adds per run (opening the log, building and compiling the
  expression, checking and testing the counts);
* **pandas seed** (up to ``--pandas-up-to`` rows): the seed's pandas code (``baselines/pandas_seed.py``)
  on the same folder, compared by whole-process wall time with the full run;
* **first run with state**: the log without its last hour, building the state file;
* **next hour**: the whole log with a copy of that state file (copied before each repeat, untimed),
  so it reads only the rows since the watermark minus the lateness allowance (one hour), with
  ``memory_limit="2GB"`` (``--next-memory-limit``) as an hourly job would run.

Each repeat's numbers are checked: the incremental run's traffic matrix, SRM tests, multiple exposure
and drop test equal the full run's, and the floor's counts equal the full run's. Medians of
``--repeats`` runs, the order of the independent runs rotated between repeats, ratios from the same
invocation; results go to ``benchmarks/INCREMENTAL.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.generate import DATA_DIR, parse_rows, rows_label

HERE = Path(__file__).resolve().parent
RATIOS = {"control": 1, "treatment": 1}

FLOOR_SQL = """
WITH firsts AS MATERIALIZED (
    SELECT unit_id AS u, variant AS v, MIN(ts) AS t FROM read_parquet({path})
    WHERE unit_id IS NOT NULL AND variant IS NOT NULL AND ts IS NOT NULL GROUP BY ALL
), active AS ({active}),
new AS (SELECT CAST(FLOOR(EPOCH(t) / 3600) AS BIGINT) AS b, v, COUNT(*) AS new FROM firsts GROUP BY ALL),
per_unit AS (SELECT u, COUNT(*) AS k FROM firsts GROUP BY u),
shared AS (SELECT f.u, f.v FROM firsts AS f SEMI JOIN (SELECT u FROM per_unit WHERE k > 1) USING (u)),
pairs AS (
    SELECT a.v AS v1, b.v AS v2, COUNT(*) AS n FROM shared AS a JOIN shared AS b USING (u)
    WHERE a.v < b.v GROUP BY ALL
)
SELECT 'matrix' AS part, b, v, NULL AS v2, active, COALESCE(new, 0) AS n
FROM active LEFT JOIN new USING (b, v)
UNION ALL SELECT 'units', NULL, NULL, NULL, COUNT(*), COUNT(*) FILTER (WHERE k > 1) FROM per_unit
UNION ALL SELECT 'pair', NULL, v1, v2, n, NULL FROM pairs
"""
"""The hand-written floor of the full run's counts (``{active}``: the per-range active counts)."""


DEFERRED = ("ibis.backends.duckdb", "scipy.special")
"""What the library imports on first use rather than with the package (about 0.4 s): loaded before the
clock starts, as the floor's ``duckdb`` is, so the main table times the work; the whole-process table
times the imports too."""


def run_xpyrment(glob: str, state: str | None, memory_limit: str | None = None) -> dict[str, Any]:
    """One ``run_telemetry_checks`` (the measured process); its numbers, for the equality checks."""
    import xpyrment_sql as xs

    for module in DEFERRED:
        importlib.import_module(module)
    started = time.perf_counter()
    monitor = xs.LiveMonitor(glob, time_col="ts", state=state, memory_limit=memory_limit)
    report = monitor.run_telemetry_checks(RATIOS, freq="h")
    seconds = time.perf_counter() - started
    numbers = report.to_dict()
    numbers.pop("state")
    return {"seconds": seconds, "numbers": numbers}


def run_floor(glob: str) -> dict[str, Any]:
    """The hand-written SQL floor, timed around the query; its totals, for the equality check."""
    from benchmarks.baselines.duckdb_sql import _NOT_NULL, ACTIVE_CHUNK_SQL, _quote, connect, time_ranges

    con = connect()
    source = _quote(glob)
    started = time.perf_counter()
    chunks = [
        ACTIVE_CHUNK_SQL.format(origin=0, width=3600, path=source, not_null=_NOT_NULL, time_range=part)
        for part in time_ranges(con, source, 3600, 0)
    ]
    rows = con.execute(FLOOR_SQL.format(path=source, active=" UNION ALL ".join(chunks))).fetchall()
    seconds = time.perf_counter() - started
    matrix = [row for row in rows if row[0] == "matrix"]
    (totals,) = [row for row in rows if row[0] == "units"]
    return {
        "seconds": seconds,
        "numbers": {
            "active": sum(row[4] for row in matrix),
            "new": sum(row[5] for row in matrix),
            "units": totals[4],
            "multiple_units": totals[5],
        },
    }


def run_query(glob: str) -> dict[str, Any]:
    """The full run's traffic-matrix query alone, timed as the floor is: compiled first (untimed, as
    is opening the log), then sent through the same connection."""
    import xpyrment_sql as xs
    from xpyrment_sql.bins import parse_freq
    from xpyrment_sql.checks.traffic import matrix_query

    for module in DEFERRED:
        importlib.import_module(module)
    source = xs.LiveMonitor(glob, time_col="ts").source
    query = matrix_query(source, source.variant_col, parse_freq("h", None), None, exposure=True)
    sql = source.backend.compile(query)
    started = time.perf_counter()
    source.backend.con.execute(sql).fetchall()
    return {"seconds": time.perf_counter() - started, "numbers": {}}


def run_pandas(folder: str) -> dict[str, Any]:
    """The seed's pandas code on the log's folder."""
    from benchmarks.baselines.pandas_seed import run

    started = time.perf_counter()
    run(folder, "h", [1.0, 1.0])
    return {"seconds": time.perf_counter() - started, "numbers": {}}


def measure(
    kind: str, target: str, state: str | None = None, memory_limit: str | None = None
) -> tuple[float, float, float, dict[str, Any]]:
    """Inner seconds, process wall seconds, peak RSS (GiB) and the numbers of one fresh process."""
    arguments = ["benchmarks.incremental", "--run", kind, target]
    arguments += ["--state", state] if state else []
    arguments += ["--memory-limit", memory_limit] if memory_limit else []
    result, wall, rss = launched(arguments)
    return float(result["seconds"]), wall, rss, result["numbers"]


def launched(arguments: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run ``python -m ARGUMENTS --out FILE`` as a fresh process through ``launch.py``: the JSON it
    wrote to FILE, its wall seconds and its own peak RSS (GiB)."""
    with tempfile.TemporaryDirectory() as scratch:
        usage, out = Path(scratch) / "usage", Path(scratch) / "out.json"
        command = [sys.executable, "-m", *arguments, "--out", str(out)]
        launcher = [sys.executable, "-I", "-S", str(HERE / "launch.py"), str(usage)]
        subprocess.run([*launcher, *command], check=True, cwd=HERE.parent, env=os.environ.copy())
        code, rss_kb, wall = usage.read_text().split()
        if int(code) != 0:
            raise RuntimeError(f"the run exited with {code}: {' '.join(command)}")
        return json.loads(out.read_text()), float(wall), int(rss_kb) / 2**20


def split_log(rows: int, data: Path) -> tuple[Path, Path, Path]:
    """A 14-day log split at its last hour, kept under ``data``: the log's folder, its last hour's
    file, and where that file waits while the log is the one before it (as a log grows)."""
    from xpyrment_sql.synthetic import write_exposure_log

    folder = data / f"incremental-{rows_label(rows)}"
    log, aside = folder / "log", folder / "part-1.parquet"
    last_hour = log / "part-1.parquet"
    if aside.exists():
        aside.rename(last_hour)
    if last_hour.exists() and (log / "part-0.parquet").exists():
        return log, last_hour, aside
    shutil.rmtree(folder, ignore_errors=True)
    log.mkdir(parents=True)
    whole = folder / "whole.parquet"
    write_exposure_log(whole, rows=rows, days=14, seed=7)
    with duckdb.connect() as con:
        cut = con.execute(f"SELECT date_trunc('hour', max(ts)) FROM read_parquet('{whole}')").fetchone()[0]
        for name, condition in (("part-0.parquet.tmp", "<"), ("part-1.parquet.tmp", ">=")):
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{whole}') WHERE ts {condition} TIMESTAMP '{cut}') "
                f"TO '{folder / name}' (FORMAT parquet)"
            )
    whole.unlink()
    (folder / "part-0.parquet.tmp").rename(log / "part-0.parquet")
    (folder / "part-1.parquet.tmp").rename(last_hour)
    return log, last_hour, aside


def comparable_floor(numbers: dict[str, Any]) -> dict[str, int]:
    """The full run's totals in the floor's terms."""
    traffic, exposure = numbers["traffic"], numbers["multiple_exposure"]
    return {
        "active": int(sum(sum(row) for row in traffic["active"])),
        "new": int(sum(sum(row) for row in traffic["new"])),
        "units": int(exposure["units"]),
        "multiple_units": int(exposure["multiple_units"]),
    }


def bench(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """Medians of every run at ``rows`` rows, checked equal where they compute the same thing."""
    log, last_hour, aside = split_log(rows, Path(args.data))
    glob = str(log / "*.parquet")
    kinds = ["full"]
    kinds += ["query", "floor"] if rows <= args.floor_up_to else []
    kinds += ["pandas"] if rows <= args.pandas_up_to else []
    runs: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in [*kinds, "first", "next"]}
    modes = {
        "full": ("xpyrment", glob),
        "query": ("query", glob),
        "floor": ("floor", glob),
        "pandas": ("pandas", str(log)),
    }
    with tempfile.TemporaryDirectory(prefix="xpyrment-incremental-") as scratch:
        built = Path(scratch) / "built.duckdb"
        for repeat in range(args.repeats):
            order = kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]
            numbers = {}
            for kind in order:
                mode, target = modes[kind]
                *timing, numbers[kind] = measure(mode, target)
                runs[kind].append(tuple(timing))
            if "floor" in numbers and numbers["floor"] != comparable_floor(numbers["full"]):
                raise AssertionError(f"the SQL floor counts differently at {rows:,} rows")
            for path in Path(scratch).glob("built.duckdb*"):
                path.unlink()
            last_hour.rename(aside)
            try:
                runs["first"].append(tuple(measure("xpyrment", glob, str(built))[:3]))
            finally:
                aside.rename(last_hour)
            state = Path(scratch) / f"next-{repeat}.duckdb"
            shutil.copy(built, state)
            *timing, incremental = measure("xpyrment", glob, str(state), args.next_memory_limit)
            runs["next"].append(tuple(timing))
            state.unlink()
            if incremental != numbers["full"]:
                raise AssertionError(f"the incremental run differs from the full run at {rows:,} rows")
            done = ", ".join(f"{name} {values[-1][0]:.2f} s" for name, values in runs.items())
            print(f"[{rows_label(rows)}] repeat {repeat + 1}: {done}", file=sys.stderr)
    medians: dict[str, Any] = {
        name: {
            "seconds": statistics.median(v[0] for v in values),
            "wall": statistics.median(v[1] for v in values),
            "rss": max(v[2] for v in values),
        }
        for name, values in runs.items()
    }
    return {**medians, "repeats": args.repeats}


def table(results: dict[int, dict[str, Any]]) -> str:
    """The markdown written to INCREMENTAL.md."""
    lines = [
        "| rows | full run | its query alone | SQL floor | full / floor | query / floor | "
        "first run with state | next hour with state | full / next hour | first / full | "
        "peak RSS, next hour |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    process = [
        "| rows | full run, whole process | SQL floor, whole process | full / floor | "
        "pandas seed, whole process | pandas / full |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rows, r in results.items():
        full, first, nxt = r["full"]["seconds"], r["first"]["seconds"], r["next"]["seconds"]
        floor = f"{r['floor']['seconds']:.2f} s" if "floor" in r else "not run"
        over = f"{full / r['floor']['seconds']:.2f}x" if "floor" in r else "-"
        query = f"{r['query']['seconds']:.2f} s" if "query" in r else "not run"
        alone = f"{r['query']['seconds'] / r['floor']['seconds']:.2f}x" if "query" in r else "-"
        lines.append(
            f"| {rows_label(rows)} ({r['repeats']}) | {full:.2f} s | {query} | {floor} | {over} | {alone} | "
            f"{first:.2f} s | {nxt:.2f} s | {full / nxt:.1f}x | {first / full:.2f}x | "
            f"{r['next']['rss']:.2f} GiB |"
        )
        if "pandas" in r:
            mine, seed = r["full"]["wall"], r["pandas"]["wall"]
            bare = r["floor"]["wall"] if "floor" in r else None
            floor_cells = "- | -" if bare is None else f"{bare:.2f} s | {mine / bare:.2f}x"
            process.append(
                f"| {rows_label(rows)} | {mine:.2f} s | {floor_cells} | {seed:.2f} s | {seed / mine:.2f}x |"
            )
    head = textwrap.dedent(
        """\
        # Live runs: the full run, its floor, and what a state file saves

        Written by `python -m benchmarks.incremental` (medians of the number of runs in brackets, each
        a fresh process; hourly bins, default `run_telemetry_checks` with multiple exposure; every repeat
        checked: the next-hour run's numbers equal the full run's, the floor's counts equal the full
        run's). A 14-day synthetic log, split at the start of its last hour. "full" reads all of it
        without state; "its query alone" is the full run's query, compiled before the clock starts;
        "SQL floor" computes the same counts in one hand-written DuckDB statement (the query alone is
        timed); "first run with state" builds the state from the log without its last
        hour; "next hour" reads the whole log with that state (one hour of lateness allowance),
        with `memory_limit="2GB"` as an hourly job would set it. Seconds are timed inside the
        process, after imports (the library's deferred ones included).

        """
    )
    tail = textwrap.dedent(
        """

        Whole processes (interpreter start, imports, reading and checking), wall time:

        """
    )
    text = head + "\n".join(lines) + "\n"
    if len(process) > 2:
        text += tail + "\n".join(process) + "\n"
    return text


def main(argv: list[str] | None = None) -> None:
    """Run the sizes asked for and write INCREMENTAL.md (or, with ``--run``, be one measured run)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1e7", help="comma-separated sizes, e.g. 1e7,1e8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=str(DATA_DIR), help="where split logs are kept and reused")
    parser.add_argument("--floor-up-to", type=parse_rows, default=10**8)
    parser.add_argument("--pandas-up-to", type=parse_rows, default=10**7)
    parser.add_argument("--results", default=str(HERE / "INCREMENTAL.md"))
    parser.add_argument(
        "--raw", default=str(HERE / "INCREMENTAL.json"), help="measured sizes, merged with each invocation's"
    )
    parser.add_argument("--run", nargs=2, metavar=("KIND", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--next-memory-limit",
        default="2GB",
        help="LiveMonitor(memory_limit=...) of the next-hour run, as an hourly cron job would set it "
        "(without one, DuckDB keeps the state file's pages it read cached up to 80%% of RAM)",
    )
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        kind, target = args.run
        runners = {
            "xpyrment": lambda: run_xpyrment(target, args.state, args.memory_limit),
            "query": lambda: run_query(target),
            "floor": lambda: run_floor(target),
            "pandas": lambda: run_pandas(target),
        }
        Path(args.out).write_text(json.dumps(runners[kind]()))
        return
    raw = Path(args.raw)
    results = {int(rows): r for rows, r in json.loads(raw.read_text()).items()} if raw.exists() else {}
    for rows in (parse_rows(text) for text in args.rows.split(",")):
        results[rows] = bench(rows, args)
        results = dict(sorted(results.items()))
        raw.write_text(json.dumps(results, indent=1) + "\n")
        Path(args.results).write_text(table(results))
    print(Path(args.results).read_text())


if __name__ == "__main__":
    main()
