"""Fifty experiments in one table: ``check_all`` against one whole-table run and a loop of 50 monitors.

    python -m benchmarks.fleet --rows 1e8 --repeats 3

The table is the 14-day synthetic log of ``benchmarks.incremental`` (its split folder, generated if
missing) with an ``experiment_id`` column: unit ``u`` belongs to experiment
``floor(50 * h(u)^2)`` with ``h`` a hash of the unit id in [0, 1), so experiment ``k`` holds a
``(2k + 1) / 2500`` share of the units: the largest is 99 times the smallest. It is written once
under ``--data`` and reused. Each measurement is a fresh process (``benchmarks/launch.py``), timed
inside after imports:

* **one experiment**: ``run_telemetry_checks`` over the whole table, as if it held one experiment;
* **check_all**: ``LiveMonitor(...).check_all(config, "experiment_id")`` for all 50 (hourly bins);
* **loop of 50** (up to ``--loop-up-to`` rows): what a user writes today, one monitor per experiment
  over the same files filtered to it (an Ibis filter, pushed into DuckDB's scan).

Each repeat checks that check_all's distinct units per experiment equal the loop's. Medians of
``--repeats``, order rotated between repeats; results go to ``benchmarks/FLEET.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.generate import DATA_DIR, parse_rows, rows_label
from benchmarks.incremental import DEFERRED, launched, split_log

HERE = Path(__file__).resolve().parent
EXPERIMENTS = 50
CONFIG = '[defaults]\nfreq = "h"\nratios = { control = 1, treatment = 1 }\n' + "".join(
    f'[[experiment]]\nid = "exp-{k:02d}"\n' for k in range(EXPERIMENTS)
)


def fleet_table(rows: int, data: Path) -> Path:
    """The log with its ``experiment_id`` column, one Parquet file (written once)."""
    log, _, _ = split_log(rows, data)
    target = data / f"fleet-{rows_label(rows)}.parquet"
    if not target.exists():
        draft = target.with_suffix(".tmp")
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT *, 'exp-' || lpad(CAST(CAST(floor({EXPERIMENTS} * "
                "pow((hash(unit_id) % 1000003) / 1000003.0, 2)) AS INT) AS VARCHAR), 2, '0') "
                "AS experiment_id "
                f"FROM read_parquet('{log}/*.parquet') ORDER BY ts) TO '{draft}' (FORMAT parquet)"
            )
        draft.rename(target)
    return target


def run(kind: str, path: str, config: str) -> dict[str, Any]:
    """One measured run in this process: seconds and distinct units per experiment."""
    import ibis

    import xpyrment_sql as xs

    for module in DEFERRED:
        importlib.import_module(module)
    started = time.perf_counter()
    if kind == "single":
        xs.LiveMonitor(path, time_col="ts").run_telemetry_checks({"control": 1, "treatment": 1}, freq="h")
        units: dict[str, int] = {}
    elif kind == "fleet":
        fleet = xs.LiveMonitor(path, time_col="ts").check_all(config, "experiment_id")
        units = {str(status.experiment): status.units for status in fleet.experiments}
    else:
        table = ibis.duckdb.connect().read_parquet(path)
        units = {}
        for k in range(EXPERIMENTS):
            name = f"exp-{k:02d}"
            monitor = xs.LiveMonitor(table.filter(table.experiment_id == name), time_col="ts")
            report = monitor.run_telemetry_checks({"control": 1, "treatment": 1}, freq="h")
            units[name] = report.multiple_exposure.units
    return {"seconds": time.perf_counter() - started, "units": units}


def measure(kind: str, path: Path, config: Path) -> tuple[float, float, dict[str, int]]:
    """Inner seconds, peak RSS (GiB) and distinct units per experiment of one fresh process."""
    result, _, rss = launched(["benchmarks.fleet", "--run", kind, str(path), str(config)])
    return float(result["seconds"]), rss, result["units"]


def bench(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """Medians of each kind of run at ``rows`` rows; check_all's units checked against the loop's."""
    path = fleet_table(rows, Path(args.data))
    kinds = ["single", "fleet"] + (["loop"] if rows <= args.loop_up_to else [])
    runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "experiments.toml"
        config.write_text(CONFIG)
        for repeat in range(args.repeats):
            units = {}
            for kind in kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]:
                seconds, rss, units[kind] = measure(kind, path, config)
                runs[kind].append((seconds, rss))
            if "loop" in units and units["loop"] != units["fleet"]:
                raise AssertionError(f"check_all counts units differently from the loop at {rows:,} rows")
            done = ", ".join(f"{kind} {values[-1][0]:.2f} s" for kind, values in runs.items())
            print(f"[{rows_label(rows)}] repeat {repeat + 1}: {done}", file=sys.stderr)
    return {
        kind: {"seconds": statistics.median(v[0] for v in values), "rss": max(v[1] for v in values)}
        for kind, values in runs.items()
    } | {"repeats": args.repeats}


def table(results: dict[int, dict[str, Any]]) -> str:
    """The markdown written to FLEET.md."""
    lines = [
        "| rows | one experiment | check_all (50) | check_all / one | loop of 50 monitors | loop / check_all "
        "| peak RSS, check_all |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, r in results.items():
        single, fleet = r["single"]["seconds"], r["fleet"]["seconds"]
        loop = (
            f"{r['loop']['seconds']:.2f} s | {r['loop']['seconds'] / fleet:.1f}x"
            if "loop" in r
            else "not run | -"
        )
        lines.append(
            f"| {rows_label(rows)} ({r['repeats']}) | {single:.2f} s | {fleet:.2f} s | {fleet / single:.2f}x "
            f"| {loop} | {r['fleet']['rss']:.2f} GiB |"
        )
    head = textwrap.dedent(
        """\
        # Fifty experiments in one table

        Written by `python -m benchmarks.fleet` (medians of the runs in brackets, each a fresh process,
        timed after imports; hourly bins). The 14-day synthetic log with an `experiment_id` column:
        50 experiments whose sizes vary 99-fold. "one experiment": `run_telemetry_checks` over the
        whole table; "check_all": every experiment from one config; "loop": one monitor per experiment
        over the same files, filtered to it. Every repeat checks that check_all's distinct units per
        experiment equal the loop's.

        """
    )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the sizes asked for and write FLEET.md (or, with ``--run``, be one measured run)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1e7", help="comma-separated sizes, e.g. 1e7,1e8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=str(DATA_DIR), help="where logs are kept and reused")
    parser.add_argument("--loop-up-to", type=parse_rows, default=10**8)
    parser.add_argument("--results", default=str(HERE / "FLEET.md"))
    parser.add_argument("--run", nargs=3, metavar=("KIND", "PATH", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        kind, path, config = args.run
        Path(args.out).write_text(json.dumps(run(kind, path, config)))
        return
    results = {rows: bench(rows, args) for rows in map(parse_rows, args.rows.split(","))}
    text = table(results)
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
