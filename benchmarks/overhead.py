"""Per-call overhead: small DataFrames through the whole ``run_telemetry_checks``, warm and cold.

    python -m benchmarks.overhead [--rows 1000,100000] [--repeats 15] [--out benchmarks/OVERHEAD.md]

Small inputs are where a library's fixed costs show: building Ibis expressions, compiling them to
SQL, opening the embedded DuckDB and converting results. For each size a synthetic log (the
benchmarks' generator, 14 days, planted SRM) is read into a pandas DataFrame, then
``LiveMonitor(frame, time_col="ts").run_telemetry_checks([1, 1], freq="h")`` runs once cold (the
first call in this process, after imports) and ``--repeats`` times warm; the median warm wall time
is the figure to quote. The smallest size's warm time is the per-call overhead: at 1,000 rows
DuckDB's own work is negligible. Statements per call are counted from Ibis' verbose log.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd

import xpyrment_sql as xs
from benchmarks.generate import parse_rows, rows_label
from benchmarks.run import machine
from xpyrment_sql.synthetic import write_exposure_log

OUT = Path(__file__).resolve().parent / "OVERHEAD.md"
METHODS = ("anytime", "sprt")


@dataclass(frozen=True)
class Timing:
    """One size and sequential method: cold and warm wall seconds and statements per call."""

    rows: int
    method: str
    cold_s: float
    warm_s: tuple[float, ...]
    statements: int

    @property
    def warm_median_s(self) -> float:
        """Median of the warm calls."""
        return statistics.median(self.warm_s)


def frame(rows: int, folder: Path) -> pd.DataFrame:
    """A synthetic exposure log of ``rows`` rows, read into pandas."""
    path = folder / f"overhead_{rows_label(rows)}.parquet"
    write_exposure_log(str(path), rows=rows, srm={"arm": "treatment", "keep": 0.7, "after": 0.3})
    return pd.read_parquet(path)


def one_call(data: pd.DataFrame, method: str) -> Callable[[], None]:
    """The call being timed: a monitor over ``data`` and the full set of checks."""

    def call() -> None:
        xs.LiveMonitor(data, time_col="ts").run_telemetry_checks(
            [1, 1], freq="h", sequential_method=method
        )

    return call


def statements_per_call(call: Callable[[], None]) -> int:
    """How many SQL statements one call sends (Ibis' verbose log)."""
    sent: list[str] = []
    previous = (ibis.options.verbose, ibis.options.verbose_log)
    ibis.options.verbose, ibis.options.verbose_log = True, sent.append
    try:
        call()
    finally:
        ibis.options.verbose, ibis.options.verbose_log = previous
    return len(sent)


def measure(rows: int, method: str, data: pd.DataFrame, repeats: int) -> Timing:
    """Cold then ``repeats`` warm wall times of one call, and its statement count."""
    call = one_call(data, method)
    started = time.perf_counter()
    call()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        warm.append(time.perf_counter() - started)
    return Timing(rows, method, cold, tuple(warm), statements_per_call(call))


def markdown(timings: Sequence[Timing], repeats: int, command: str) -> str:
    """The results table with the machine and method, as written to ``OVERHEAD.md``."""
    info = machine()
    lines = [
        "# Per-call overhead",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}`.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']}; Python {info['python']}, "
        f"duckdb {info['duckdb']}, ibis-framework {info['ibis-framework']}; commit {info['commit']}.",
        "",
        "A pandas DataFrame through `LiveMonitor(df, time_col=\"ts\").run_telemetry_checks([1, 1], "
        "freq=\"h\", sequential_method=...)`: the monitor is built anew on every call. **cold**: the "
        f"first call in the process, after imports. **warm**: median of {repeats} further calls "
        "(min and max beside it). The 1k-row warm time is the per-call overhead.",
        "",
        "| rows | sequential method | statements | cold s | warm median s | warm min-max s |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for t in timings:
        lines.append(
            f"| {t.rows:,} | {t.method} | {t.statements} | {t.cold_s:.3f} | {t.warm_median_s:.3f} "
            f"| {min(t.warm_s):.3f}-{max(t.warm_s):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every size and method, print the table and write it to ``--out``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1000,100000", help="comma-separated sizes")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    sizes = [parse_rows(text) for text in args.rows.split(",")]
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            data = frame(rows, Path(folder))
            timings.extend(measure(rows, method, data, args.repeats) for method in METHODS)
    command = "python -m benchmarks.overhead " + " ".join(
        f"--{name} {value}" for name, value in (("rows", args.rows), ("repeats", args.repeats))
    )
    text = markdown(timings, args.repeats, command)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
