"""What a state file saves an hourly run: full run vs first run with state vs the next hour's run.

    python -m benchmarks.incremental --rows 1e7,1e8 --repeats 3

For each size, a 14-day log (``xpyrment_sql.synthetic``) is split at the start of its last hour into
two Parquet files in one folder, read as one glob (the last hour's file is moved aside while the
state is first built, as a log grows). Each measurement is a fresh process started through
``benchmarks/launch.py`` (wall time and its own peak RSS) running ``run_telemetry_checks`` at hourly
bins:

* **full**: the whole log (both files), no state: what every hourly run costs today;
* **first run with state**: the log without its last hour, building the state file;
* **next hour**: the whole log with a copy of that state file (copied before each repeat, untimed),
  so it reads only the rows since the watermark minus the lateness allowance (one hour).

Each repeat's numbers are checked: the incremental run's traffic matrix, SRM tests, multiple exposure
and drop test equal the full run's. Medians of ``--repeats`` runs, ratios from the same invocation;
results go to ``benchmarks/INCREMENTAL.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.generate import parse_rows, rows_label

HERE = Path(__file__).resolve().parent
RATIOS = {"control": 1, "treatment": 1}


def run_once(glob: str, state: str | None, out: str) -> None:
    """The measured process: one ``run_telemetry_checks``; writes its numbers as JSON to ``out``."""
    import time

    import xpyrment_sql as xs

    started = time.perf_counter()
    monitor = xs.LiveMonitor(glob, time_col="ts", state=state)
    report = monitor.run_telemetry_checks(RATIOS, freq="h")
    seconds = time.perf_counter() - started
    numbers = report.to_dict()
    numbers.pop("state")
    Path(out).write_text(json.dumps({"seconds": seconds, "numbers": numbers}))


def measure(glob: str, state: str | None) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, peak RSS (GiB) and the report's numbers of one run in a fresh process."""
    with tempfile.TemporaryDirectory() as scratch:
        report, out = Path(scratch) / "usage", Path(scratch) / "out.json"
        command = [sys.executable, "-m", "benchmarks.incremental", "--run", glob, "--out", str(out)]
        command += ["--state", state] if state else []
        launcher = [sys.executable, "-I", "-S", str(HERE / "launch.py"), str(report)]
        subprocess.run([*launcher, *command], check=True, cwd=HERE.parent, env=os.environ.copy())
        code, rss_kb, _ = report.read_text().split()
        if int(code) != 0:
            raise RuntimeError(f"the run exited with {code}: {' '.join(command)}")
        result = json.loads(out.read_text())
        return float(result["seconds"]), int(rss_kb) / 2**20, result["numbers"]


def split_log(rows: int, folder: Path) -> tuple[str, Path, Path]:
    """A 14-day log split at its last hour: the glob of the log's folder, its last hour's file, and
    where that file waits while the log is the one before it (as a log grows, in one folder)."""
    from xpyrment_sql.synthetic import write_exposure_log

    whole = folder / "whole.parquet"
    write_exposure_log(whole, rows=rows, days=14, seed=7)
    log = folder / "log"
    log.mkdir()
    last_hour = log / "part-1.parquet"
    with duckdb.connect() as con:
        cut = con.execute(f"SELECT date_trunc('hour', max(ts)) FROM read_parquet('{whole}')").fetchone()[0]
        for target, condition in ((log / "part-0.parquet", "<"), (last_hour, ">=")):
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{whole}') WHERE ts {condition} TIMESTAMP '{cut}' "
                f"ORDER BY ts) TO '{target}' (FORMAT parquet)"
            )
    whole.unlink()
    return str(log / "*.parquet"), last_hour, folder / "part-1.parquet"


def bench(rows: int, repeats: int) -> dict[str, Any]:
    """Medians of full, first-with-state and next-hour runs at ``rows`` rows, checked equal."""
    with tempfile.TemporaryDirectory(prefix="xpyrment-incremental-") as scratch:
        folder = Path(scratch)
        glob, last_hour, aside = split_log(rows, folder)
        built = folder / "built.duckdb"
        runs: dict[str, list[tuple[float, float]]] = {"full": [], "first": [], "next": []}
        for repeat in range(repeats):
            seconds, rss, full = measure(glob, None)
            runs["full"].append((seconds, rss))
            for path in folder.glob("built.duckdb*"):
                path.unlink()
            last_hour.rename(aside)
            runs["first"].append(measure(glob, str(built))[:2])
            aside.rename(last_hour)
            state = folder / f"next-{repeat}.duckdb"
            shutil.copy(built, state)
            seconds, rss, incremental = measure(glob, str(state))
            runs["next"].append((seconds, rss))
            if incremental != full:
                raise AssertionError(f"the incremental run differs from the full run at {rows:,} rows")
            done = ", ".join(f"{name} {values[-1][0]:.2f} s" for name, values in runs.items())
            print(f"[{rows_label(rows)}] repeat {repeat + 1}: {done}", file=sys.stderr)
        return {
            name: (statistics.median(s for s, _ in values), max(r for _, r in values))
            for name, values in runs.items()
        }


def table(results: dict[int, dict[str, Any]], repeats: int) -> str:
    """The markdown written to INCREMENTAL.md."""
    lines = [
        "| rows | full run | first run with state | next hour with state | full / next hour | "
        "first / full | peak RSS, next hour |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, r in results.items():
        full, first, nxt = r["full"][0], r["first"][0], r["next"][0]
        lines.append(
            f"| {rows_label(rows)} | {full:.2f} s | {first:.2f} s | {nxt:.2f} s | {full / nxt:.1f}x | "
            f"{first / full:.2f}x | {r['next'][1]:.2f} GiB |"
        )
    head = textwrap.dedent(
        f"""\
        # Incremental runs with a state file

        Written by `python -m benchmarks.incremental` (medians of {repeats} runs, each a fresh process;
        hourly bins, default `run_telemetry_checks`; the next-hour run's numbers equal the full run's in
        every repeat). A 14-day synthetic log, split at the start of its last hour; "full" reads all of
        it without state, "first run with state" builds the state from the log without its last hour,
        "next hour" reads the whole log with that state (one hour of lateness allowance).

        """
    )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the sizes asked for and write INCREMENTAL.md (or, with ``--run``, be one measured run)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1e7", help="comma-separated sizes, e.g. 1e7,1e8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", default=str(HERE / "INCREMENTAL.md"))
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_once(args.run, args.state, args.out)
        return
    sizes = [parse_rows(text) for text in args.rows.split(",")]
    results = {rows: bench(rows, args.repeats) for rows in sizes}
    Path(args.results).write_text(table(results, args.repeats))
    print(Path(args.results).read_text())


if __name__ == "__main__":
    main()
