"""Command line: ``xpyrment-sql check`` and ``xpyrment-sql demo``.

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
from xpyrment_sql.errors import ParameterError, XpyrmentError
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.report import format_report
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
    check.add_argument("source", help="Parquet/CSV path or glob, or a connection URL (with --table)")
    check.add_argument("--table", help="table name when SOURCE is a connection URL")
    check.add_argument("--time-col", required=True, help="exposure timestamp column")
    check.add_argument("--unit-col", help="unit column (default: unit_id if present, else the first)")
    check.add_argument("--variant-col", default="variant", help="variant column (default: variant)")
    check.add_argument("--ratios", required=True, help="designed split: control=1,treatment=1 or 1,1")
    check.add_argument("--freq", default="D", help="bin size: min, 15min, h, D, W (default: D)")
    check.add_argument("--window", type=int, default=7, help="bins in the anomaly baseline")
    check.add_argument("--z-threshold", type=float, default=3.0, help="z-score of a traffic drop")
    check.add_argument("--alpha", type=float, default=0.001, help="chi-square SRM significance")
    check.add_argument("--until", help="evaluate as of this time (later rows ignored)")
    check.add_argument("--tz", help="time zone whose midnight starts day bins (default: UTC)")
    check.add_argument("--memory-limit", help="memory limit of the embedded DuckDB, e.g. 8GB")
    check.add_argument("--threads", type=int, help="threads of the embedded DuckDB (default: all cores)")
    check.add_argument(
        "--approx", action="store_true", help="estimate active units per bin (HyperLogLog); faster"
    )
    check.add_argument("--json", action="store_true", help="print the full result as JSON")
    check.add_argument("--slack", action="append", default=[], help="Slack webhook URL for alerts")
    check.add_argument("--webhook", action="append", default=[], help="HTTP endpoint for alerts")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help="generate a log with a planted problem and check it")
    demo.add_argument("--out", help="folder for the generated Parquet file (default: a temp folder)")
    demo.add_argument("--json", action="store_true", help="print the full result as JSON")
    demo.set_defaults(run=_demo)
    return parser


def _check(args: argparse.Namespace) -> int:
    dispatcher = WebhookAlertDispatcher()
    for url in args.slack:
        dispatcher.register_slack(url)
    for url in args.webhook:
        dispatcher.register_custom(url)
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
        progress=_show_progress(args),
    )
    report = monitor.run_telemetry_checks(
        parse_ratios(args.ratios),
        freq=args.freq,
        window=args.window,
        z_threshold=args.z_threshold,
        srm_alpha=args.alpha,
    )
    name = redact_url(args.source) + (f" table {args.table}" if args.table else "")
    _print(report, f"{name} ({monitor.source.backend_name})", args.json)
    return EXIT_HEALTHY if report.healthy else EXIT_ALERT


def _demo(args: argparse.Namespace) -> int:
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="xpyrment-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    spec = demo_log(folder / "exposures.parquet")
    if not args.json:
        print(f"wrote {spec.rows_written:,} exposure rows to {spec.path}")
        print("planted: 15% of treatment units vanish from day 5 on; traffic drops in the final hour\n")
    monitor = LiveMonitor(str(spec.path), time_col="ts", progress=_show_progress(args))
    report = monitor.run_telemetry_checks({"control": 1, "treatment": 1}, freq="h")
    _print(report, f"{spec.path} (duckdb)", args.json)
    return EXIT_HEALTHY


def _show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only for a person at a terminal: not when piped, logged, or asked for JSON."""
    return sys.stderr.isatty() and not args.json


def _print(report: TelemetryReport, source_name: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report, source_name))


if __name__ == "__main__":
    sys.exit(main())
