"""Command line: ``xpyrment-sql check``, ``report``, ``sql`` and ``demo``.

Thin on purpose: it parses arguments, builds a :class:`LiveMonitor`, runs the checks through
:func:`~xpyrment_sql.reporting.content.run_report`, and prints. Exit codes: 0 healthy, 1 an alert
fired, 2 bad input.

A closed pipe (``xpyrment-sql check ... | head``) is not an error of the run: the reader has seen all
it wanted. Whatever cannot be written is dropped silently (stdout is pointed at the null device so
that nothing else fails on it, not even the interpreter's final flush), and the command exits with
the code the run would have had anyway: 1 only when an alert fired, so ``set -o pipefail`` scripts
still see the verdict. (The shell convention of 141, death by SIGPIPE, would tell them nothing.)

Metric and guardrail options take a compact form, ``COLUMN:KIND`` and
``COLUMN:KIND:DIRECTION:TOLERANCE[:ci][:shutoff]``: ``KIND`` is ``mean``, ``proportion`` or
``ratio`` (then ``COLUMN`` is ``NUMERATOR/DENOMINATOR``), ``DIRECTION`` is ``increase``,
``decrease`` or ``both``, and ``TOLERANCE`` the relative change allowed (``0.02`` or ``2%``).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from xpyrment_sql.alerts.dispatcher import DEFAULT_TIMEOUT, WebhookAlertDispatcher
from xpyrment_sql.checks.guardrails import DIRECTIONS, GuardrailMetric
from xpyrment_sql.checks.metrics import MeanMetric, Metric, ProportionMetric, RatioMetric
from xpyrment_sql.checks.plans import check_queries
from xpyrment_sql.cli.progress import ProgressIndicator
from xpyrment_sql.errors import ParameterError, XpyrmentError
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.queries.log import recording_sql
from xpyrment_sql.queries.sql import named_source
from xpyrment_sql.reporting.content import MonitoringReport, run_report
from xpyrment_sql.reporting.formats import report_format, write_report
from xpyrment_sql.reporting.text import format_run
from xpyrment_sql.source import redact_url
from xpyrment_sql.synthetic import demo_log

EXIT_HEALTHY, EXIT_ALERT, EXIT_BAD_INPUT = 0, 1, 2
DROP_METHODS = ("seasonal", "zscore")
METRIC_FORM = "COLUMN:KIND (KIND mean, proportion or ratio; a ratio's COLUMN is NUMERATOR/DENOMINATOR)"
GUARDRAIL_FORM = (
    "COLUMN:KIND:DIRECTION:TOLERANCE[:ci][:shutoff], e.g. latency:mean:increase:0.02 or "
    "revenue/orders:ratio:decrease:5%"
)
_GUARDRAIL_FLAGS = ("point", "ci", "shutoff")
DEMO_SOURCE_NAME = "demo exposure log (synthetic)"


def parse_ratios(text: str) -> list[float] | dict[str, float]:
    """``"control=1,treatment=1"`` -> dict; ``"1,1"`` -> list aligned with the sorted variant names."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if parts and all("=" in p for p in parts):
            pairs = (p.split("=", 1) for p in parts)
            return {name.strip(): float(value) for name, value in pairs}
        if parts and not any("=" in p for p in parts):
            return [float(p) for p in parts]
    except ValueError:
        pass
    raise ParameterError(f"--ratios {text!r} is not understood; expected 'control=1,treatment=1' or '1,1'")


def parse_metric(text: str) -> Metric:
    """``"latency:mean"``, ``"buyers:proportion"`` or ``"revenue/orders:ratio"`` -> metric ``COLUMN``."""
    columns, colon, kind = text.rpartition(":")
    if not colon:
        raise ParameterError(f"--metric {text!r} is not understood; expected {METRIC_FORM}")
    return _metric(columns, kind, f"--metric {text!r}", METRIC_FORM)


def parse_guardrail(text: str) -> GuardrailMetric:
    """``"latency:mean:increase:0.02"`` (see :data:`GUARDRAIL_FORM`) -> a guardrail on metric ``COLUMN``.

    ``ci`` judges the relative lift's CI instead of its point estimate; ``shutoff`` makes a breach
    set ``shutoff_triggered``. Column names may hold colons: the fields are read from the right.
    """
    option = f"--guardrail {text!r}"
    parts = text.split(":")
    flags: list[str] = []
    while len(parts) > 4 and parts[-1].strip().lower() in _GUARDRAIL_FLAGS:
        flags.insert(0, parts.pop().strip().lower())
    if len(parts) < 4:
        raise ParameterError(f"{option} is not understood; expected {GUARDRAIL_FORM}")
    columns, kind, direction, tolerance = ":".join(parts[:-3]), *(p.strip() for p in parts[-3:])
    metric = _metric(columns, kind, option, GUARDRAIL_FORM)
    if direction not in DIRECTIONS:
        raise ParameterError(
            f"{option}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}; "
            f"expected {GUARDRAIL_FORM}"
        )
    try:
        share = float(tolerance[:-1]) / 100 if tolerance.endswith("%") else float(tolerance)
    except ValueError:
        share = math.nan
    if not math.isfinite(share) or share < 0:
        raise ParameterError(
            f"{option}: tolerance {tolerance!r} is not a relative change >= 0 (0.02 or 2%); "
            f"expected {GUARDRAIL_FORM}"
        )
    method = "ci" if "ci" in flags else "point"
    return GuardrailMetric(metric, share, direction=direction, method=method, shutoff="shutoff" in flags)


def _metric(columns: str, kind: str, option: str, form: str) -> Metric:
    """The metric ``KIND`` of ``COLUMN`` (``NUMERATOR/DENOMINATOR`` for a ratio), named ``COLUMN``."""
    kind = kind.strip()
    columns = columns.strip()
    if kind == "ratio":
        numerator, slash, denominator = (part.strip() for part in columns.partition("/"))
        if not (slash and numerator and denominator):
            raise ParameterError(f"{option}: a ratio names NUMERATOR/DENOMINATOR columns; expected {form}")
        return RatioMetric(columns, numerator, denominator)
    if kind not in ("mean", "proportion"):
        raise ParameterError(
            f"{option}: kind {kind!r} is not one of mean, proportion, ratio; expected {form}"
        )
    if not columns:
        raise ParameterError(f"{option} names no column; expected {form}")
    return (MeanMetric if kind == "mean" else ProportionMetric)(columns, columns)


def _distinct_names(metrics: Sequence[Metric], option: str) -> None:
    """Reject two metrics of one option with the same name (results are looked up by name)."""
    names = [m.name for m in metrics]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(f"{option} names {', '.join(map(repr, twice))} more than once; give each once")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpyrment-sql`` console script; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:
        _discard(sys.stdout)
        return EXIT_HEALTHY
    try:
        return int(args.run(args))
    except XpyrmentError as exc:
        _emit(f"error: {exc}", sys.stderr)
        return EXIT_BAD_INPUT


def _emit(text: str, stream: TextIO | None = None, end: str = "\n") -> None:
    """Print ``text`` to ``stream`` (stdout) now; a reader that has gone away is not an error."""
    target = sys.stdout if stream is None else stream
    try:
        print(text, file=target, end=end, flush=True)
    except BrokenPipeError:
        _discard(target)


def _discard(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device: later writes and flushes go nowhere."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stream.fileno())
    os.close(null)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpyrment-sql", description="Health checks for running A/B experiments."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="run the traffic and SRM checks on an exposure log")
    _add_check_arguments(check)
    check.add_argument("--json", action="store_true", help="print the full result as one JSON object")
    check.set_defaults(run=_check)

    report = commands.add_parser(
        "report", help="run the checks and write a self-contained HTML (or Markdown) report"
    )
    _add_check_arguments(report)
    report.add_argument("--out", default=None, help="report file (default: report.html or report.md)")
    report.add_argument(
        "--format", choices=("html", "md"), help="html (default) or md; without it, --out's suffix decides"
    )
    report.set_defaults(run=_report, json=False)

    sql = commands.add_parser("sql", help="print every query the checks send, compiled for a SQL dialect")
    sql.add_argument("--dialect", required=True, help="duckdb, postgres, bigquery, snowflake, pyspark, ...")
    sql.add_argument("--table", required=True, help="table the queries read (schema.table accepted)")
    sql.add_argument("--time-col", required=True, help="exposure timestamp column")
    sql.add_argument("--unit-col", default="unit_id", help="unit column (default: unit_id)")
    sql.add_argument("--variant-col", default="variant", help="variant column (default: variant)")
    sql.add_argument("--freq", default="D", help="bin size: min, 15min, h, D, W (default: D)")
    sql.add_argument("--tz", help="time zone whose midnight starts day bins (default: UTC)")
    sql.add_argument("--ratios", default="1,1", help="designed split, sets the SPRT's p0 (default: 1,1)")
    sql.add_argument(
        "--segment-col", action="append", default=[], help="segment column for check_srm_by (repeatable)"
    )
    sql.add_argument(
        "--metric-col", action="append", default=[], help="metric column for calculate_metrics (repeatable)"
    )
    sql.set_defaults(run=_sql)

    demo = commands.add_parser("demo", help="generate a log with a planted problem and check it")
    demo.add_argument("--out", help="folder for the generated log and report (default: a new temp folder)")
    demo.add_argument("--json", action="store_true", help="print the full result as JSON")
    demo.set_defaults(run=_demo)
    return parser


def _add_check_arguments(command: argparse.ArgumentParser) -> None:
    """The source and check options that ``check`` and ``report`` share."""
    command.add_argument("source", help="Parquet/CSV path or glob, or a connection URL (with --table)")
    command.add_argument("--table", help="table name when SOURCE is a connection URL")
    command.add_argument("--time-col", required=True, help="exposure timestamp column")
    command.add_argument("--unit-col", help="unit column (default: unit_id if present, else the first)")
    command.add_argument("--variant-col", default="variant", help="variant column (default: variant)")
    command.add_argument("--ratios", required=True, help="designed split: control=1,treatment=1 or 1,1")
    command.add_argument("--freq", default="D", help="bin size: min, 15min, h, D, W (default: D)")
    command.add_argument(
        "--drop-method",
        choices=DROP_METHODS,
        default="seasonal",
        help="traffic drop test: the judged bin against the same bin in earlier days/weeks (seasonal, "
        "default) or against the --window bins before it (zscore)",
    )
    command.add_argument("--window", type=int, default=7, help="bins in the zscore test's baseline")
    command.add_argument(
        "--z-threshold", type=float, default=None, help="z-score of a traffic drop (default: the method's)"
    )
    command.add_argument("--alpha", type=float, default=0.001, help="chi-square SRM significance")
    command.add_argument(
        "--until", help="evaluate as of this time, or 'now' (later rows ignored; its bin is in progress)"
    )
    command.add_argument("--tz", help="time zone whose midnight starts day bins (default: UTC)")
    command.add_argument(
        "--time-unit",
        choices=("s", "ms", "us", "ns"),
        help="unit of an integer or float epoch time column (required for one)",
    )
    command.add_argument(
        "--segment-col",
        action="append",
        default=[],
        metavar="COL",
        help="also test SRM per segment of this column (repeatable; columns combine into segments)",
    )
    command.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="COLUMN:KIND",
        help="also compare a metric against control: latency:mean, buyers:proportion, "
        "revenue/orders:ratio (repeatable)",
    )
    command.add_argument(
        "--guardrail",
        action="append",
        default=[],
        metavar="COLUMN:KIND:DIRECTION:TOLERANCE[:ci][:shutoff]",
        help="alert GUARDRAIL_BREACH when the metric moves beyond TOLERANCE (relative, 0.02 or 2%%) "
        "in DIRECTION (increase, decrease, both): e.g. latency:mean:increase:0.02 (repeatable)",
    )
    command.add_argument(
        "--memory-limit", help="memory budget of the embedded DuckDB, e.g. 8GB (DuckDB gets 15%% less)"
    )
    command.add_argument("--threads", type=int, help="threads of the embedded DuckDB (default: all cores)")
    command.add_argument(
        "--approx", action="store_true", help="estimate active units per bin (HyperLogLog); faster"
    )
    command.add_argument("--slack", action="append", default=[], help="Slack webhook URL for alerts")
    command.add_argument("--webhook", action="append", default=[], help="HTTP endpoint for alerts")
    command.add_argument(
        "--alert-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each webhook delivery may take in total (default: {DEFAULT_TIMEOUT:g})",
    )


def _open_monitor(args: argparse.Namespace, progress: ProgressIndicator) -> tuple[LiveMonitor, list[str]]:
    """The monitor the options describe, and the SQL sent while opening the source."""
    dispatcher = WebhookAlertDispatcher(timeout=args.alert_timeout)
    for url in args.slack:
        dispatcher.register_slack(url)
    for url in args.webhook:
        dispatcher.register_custom(url)
    progress.stage("opening the source")
    with recording_sql(progress.on_statement) as statements:
        monitor = LiveMonitor(
            args.source,
            time_col=args.time_col,
            dispatcher=dispatcher if dispatcher.handler_names else None,
            unit_col=args.unit_col,
            variant_col=args.variant_col,
            table=args.table,
            until=args.until,
            tz=args.tz,
            time_unit=args.time_unit,
            exact=not args.approx,
            memory_limit=args.memory_limit,
            threads=args.threads,
        )
    return monitor, statements


def _short_source_name(args: argparse.Namespace, monitor: LiveMonitor) -> str:
    """How outputs title the log: a file's name (a glob's last folder and pattern), or the redacted URL.

    A report is shared; the absolute path of a temporary folder on the machine that ran it tells its
    readers nothing.
    """
    if "://" in args.source:
        name = redact_url(args.source) + (f" table {args.table}" if args.table else "")
    else:
        path = Path(args.source)
        name = str(Path(*path.parts[-2:])) if glob.has_magic(args.source) else path.name or args.source
    return f"{name} ({monitor.source.backend_name})"


def _run(args: argparse.Namespace, progress: ProgressIndicator, *, chart: bool) -> MonitoringReport:
    """Open the source and run every check the options ask for (one run, as ``check`` and ``report``)."""
    ratios = parse_ratios(args.ratios)
    metrics = [parse_metric(text) for text in args.metric]
    guardrails = [parse_guardrail(text) for text in args.guardrail]
    _distinct_names(metrics, "--metric")
    _distinct_names([g.metric for g in guardrails], "--guardrail")
    monitor, opening = _open_monitor(args, progress)
    return run_report(
        monitor,
        ratios,
        source_name=_short_source_name(args, monitor),
        freq=args.freq,
        window=args.window,
        z_threshold=args.z_threshold,
        drop_method=args.drop_method,
        srm_alpha=args.alpha,
        guardrails=guardrails,
        segment_cols=args.segment_col,
        metrics=metrics,
        opening_statements=opening,
        on_statement=progress.on_statement,
        chart=chart,
    )


def _check(args: argparse.Namespace) -> int:
    with _progress(args) as progress:
        run = _run(args, progress, chart=False)
    _print(run, args.json)
    return EXIT_HEALTHY if run.telemetry.healthy else EXIT_ALERT


def _report(args: argparse.Namespace) -> int:
    chosen = args.format or (report_format(args.out) if args.out else "html")
    out = Path(args.out or f"report.{chosen}")
    with _progress(args) as progress:
        run = _run(args, progress, chart=True)
        progress.stage("writing the report")
        write_report(run, out, chosen)
    _emit(format_run(run))
    _emit(f"\nreport: {out.resolve()}")
    return EXIT_HEALTHY if run.telemetry.healthy else EXIT_ALERT


def _sql(args: argparse.Namespace) -> int:
    """Print the compiled queries; nothing connects to a database."""
    source = named_source(
        args.table, args.time_col, args.unit_col, args.variant_col, args.segment_col, args.metric_col
    )
    compiled = check_queries(
        source,
        args.dialect,
        freq=args.freq,
        expected_ratios=parse_ratios(args.ratios),
        segment_cols=args.segment_col,
        metric_cols=args.metric_col,
        tz=args.tz,
    )
    _emit("\n".join(compiled.values()), end="")
    return EXIT_HEALTHY


def _demo(args: argparse.Namespace) -> int:
    """Write the synthetic log, check it, write the report, and say where the files are."""
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="xpyrment-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    notes = sys.stderr if args.json else sys.stdout
    with _progress(args) as progress:
        progress.stage("writing the synthetic log")
        spec = demo_log(folder / "exposures.parquet")
    if not args.json:
        _emit(f"wrote {spec.rows_written:,} exposure rows to {spec.path}")
        _emit(
            "planted: 15% of treatment units vanish from 2026-01-09 12:00 on; traffic falls to 20% from "
            "22:00 on the last day, whose 23:00 bin is still in progress (so 22:00 is the bin judged)\n"
        )
    with _progress(args) as progress:
        progress.stage("opening the source")
        with recording_sql(progress.on_statement) as opening:
            monitor = LiveMonitor(str(spec.path), time_col="ts")
        run = run_report(
            monitor,
            {"control": 1, "treatment": 1},
            source_name=DEMO_SOURCE_NAME,
            freq="h",
            opening_statements=opening,
            on_statement=progress.on_statement,
        )
        progress.stage("writing the report")
        path = write_report(run, folder / "report.html")
    _print(run, args.json)
    _emit(f"\nreport: {path.resolve()}", notes)
    if args.out is None:
        where = folder.resolve()
        _emit(f"files in {where}: remove them with `rm -r {shlex.quote(str(where))}` (or pass --out)", notes)
    return EXIT_HEALTHY


def _progress(args: argparse.Namespace) -> ProgressIndicator:
    """Progress only for a person at a terminal: not when piped, logged, or asked for JSON."""
    return ProgressIndicator(sys.stderr, enabled=sys.stderr.isatty() and not args.json)


def _print(run: MonitoringReport, as_json: bool) -> None:
    """The run as text, or as one JSON object (non-finite numbers are ``null``, never ``NaN``)."""
    _emit(json.dumps(run.to_dict(), indent=2, allow_nan=False) if as_json else format_run(run))

