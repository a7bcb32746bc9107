"""Command line: ``xpyrment-sql check``, ``report``, ``sql`` and ``demo``.

Thin on purpose: it parses arguments, builds a :class:`LiveMonitor`, and prints. Exit codes:
0 healthy, 1 an alert fired, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from xpyrment_sql.alerts import WebhookAlertDispatcher
from xpyrment_sql.compiled import check_queries, named_source
from xpyrment_sql.errors import ParameterError, XpyrmentError
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.monitoring_report import run_report
from xpyrment_sql.progress import ProgressIndicator
from xpyrment_sql.query_log import recording_sql
from xpyrment_sql.report import format_report
from xpyrment_sql.report_formats import report_format, write_report
from xpyrment_sql.results import TelemetryReport
from xpyrment_sql.source import redact_url
from xpyrment_sql.synthetic import demo_log

EXIT_HEALTHY, EXIT_ALERT, EXIT_BAD_INPUT = 0, 1, 2


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpyrment-sql`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except XpyrmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpyrment-sql", description="Health checks for running A/B experiments."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="run the traffic and SRM checks on an exposure log")
    _add_check_arguments(check)
    check.add_argument("--json", action="store_true", help="print the full result as JSON")
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
    demo.add_argument("--out", help="folder for the generated Parquet file (default: a temp folder)")
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
    command.add_argument("--window", type=int, default=7, help="bins in the anomaly baseline")
    command.add_argument("--z-threshold", type=float, default=3.0, help="z-score of a traffic drop")
    command.add_argument("--alpha", type=float, default=0.001, help="chi-square SRM significance")
    command.add_argument("--until", help="evaluate as of this time (later rows ignored)")
    command.add_argument("--tz", help="time zone whose midnight starts day bins (default: UTC)")
    command.add_argument(
        "--memory-limit", help="memory budget of the embedded DuckDB, e.g. 8GB (DuckDB gets 15%% less)"
    )
    command.add_argument("--threads", type=int, help="threads of the embedded DuckDB (default: all cores)")
    command.add_argument(
        "--approx", action="store_true", help="estimate active units per bin (HyperLogLog); faster"
    )
    command.add_argument("--slack", action="append", default=[], help="Slack webhook URL for alerts")
    command.add_argument("--webhook", action="append", default=[], help="HTTP endpoint for alerts")


def _open_monitor(args: argparse.Namespace, progress: ProgressIndicator) -> tuple[LiveMonitor, list[str]]:
    """The monitor the options describe, and the SQL sent while opening the source."""
    dispatcher = WebhookAlertDispatcher()
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
            exact=not args.approx,
            memory_limit=args.memory_limit,
            threads=args.threads,
        )
    return monitor, statements


def _source_name(args: argparse.Namespace, monitor: LiveMonitor) -> str:
    name = redact_url(args.source) + (f" table {args.table}" if args.table else "")
    return f"{name} ({monitor.source.backend_name})"


def _check(args: argparse.Namespace) -> int:
    with _progress(args) as progress:
        monitor, _ = _open_monitor(args, progress)
        with recording_sql(progress.on_statement):
            report = monitor.run_telemetry_checks(
                parse_ratios(args.ratios),
                freq=args.freq,
                window=args.window,
                z_threshold=args.z_threshold,
                srm_alpha=args.alpha,
            )
    _print(report, _source_name(args, monitor), args.json)
    return EXIT_HEALTHY if report.healthy else EXIT_ALERT


def _report(args: argparse.Namespace) -> int:
    chosen = args.format or (report_format(args.out) if args.out else "html")
    out = Path(args.out or f"report.{chosen}")
    with _progress(args) as progress:
        monitor, opening = _open_monitor(args, progress)
        run = run_report(
            monitor,
            parse_ratios(args.ratios),
            source_name=_source_name(args, monitor),
            freq=args.freq,
            window=args.window,
            z_threshold=args.z_threshold,
            srm_alpha=args.alpha,
            opening_statements=opening,
            on_statement=progress.on_statement,
        )
        progress.stage("writing the report")
        write_report(run, out, chosen)
    print(format_report(run.telemetry, run.source_name))
    print(f"\nreport: {out.resolve()}")
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
    print("\n".join(compiled.values()), end="")
    return EXIT_HEALTHY


def _demo(args: argparse.Namespace) -> int:
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="xpyrment-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    with _progress(args) as progress:
        progress.stage("writing the synthetic log")
        spec = demo_log(folder / "exposures.parquet")
    if not args.json:
        print(f"wrote {spec.rows_written:,} exposure rows to {spec.path}")
        print("planted: 15% of treatment units vanish from day 5 on; traffic drops in the final hour\n")
    with _progress(args) as progress:
        progress.stage("opening the source")
        with recording_sql(progress.on_statement) as opening:
            monitor = LiveMonitor(str(spec.path), time_col="ts")
        run = run_report(
            monitor,
            {"control": 1, "treatment": 1},
            source_name=f"{spec.path} (duckdb)",
            freq="h",
            opening_statements=opening,
            on_statement=progress.on_statement,
        )
        progress.stage("writing the report")
        path = write_report(run, folder / "report.html")
    _print(run.telemetry, run.source_name, args.json)
    print(f"\nreport: {path.resolve()}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_HEALTHY


def _progress(args: argparse.Namespace) -> ProgressIndicator:
    """Progress only for a person at a terminal: not when piped, logged, or asked for JSON."""
    return ProgressIndicator(sys.stderr, enabled=sys.stderr.isatty() and not args.json)


def _print(report: TelemetryReport, source_name: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report, source_name))


if __name__ == "__main__":
    sys.exit(main())
