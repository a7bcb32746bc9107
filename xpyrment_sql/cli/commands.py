"""The commands, ``check``, ``report``, ``check-all``, ``sql`` and ``demo``, each a function of the
parsed options.

A command builds what its options describe (the alert dispatcher, the :class:`LiveMonitor`), runs the
checks once through :func:`~xpyrment_sql.cli.run.run_report`, hands the record to
:mod:`xpyrment_sql.reporting` and prints through :mod:`xpyrment_sql.cli.output`. It returns the exit
code: 0 healthy, 1 an alert fired (2, bad input, is :func:`xpyrment_sql.cli.main.main`'s answer to a
:class:`~xpyrment_sql.errors.XpyrmentError`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.checks.plans import check_queries
from xpyrment_sql.cli.options import distinct_names, parse_guardrail, parse_metric, parse_ratios
from xpyrment_sql.cli.output import emit, print_run
from xpyrment_sql.cli.progress import ProgressIndicator
from xpyrment_sql.cli.run import run_report
from xpyrment_sql.config import read_config
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.queries.log import recording_sql
from xpyrment_sql.queries.sql import named_source
from xpyrment_sql.reporting.documents import report_format, write_report
from xpyrment_sql.reporting.fleet import fleet_json, format_fleet, write_fleet_report
from xpyrment_sql.reporting.records import MonitoringReport
from xpyrment_sql.reporting.text import format_run
from xpyrment_sql.settings import CheckSettings, Design
from xpyrment_sql.source import redact_url
from xpyrment_sql.synthetic import demo_log

EXIT_HEALTHY, EXIT_ALERT, EXIT_BAD_INPUT = 0, 1, 2
DEMO_SOURCE_NAME = "demo exposure log (synthetic)"


def check(args: argparse.Namespace) -> int:
    """Run the checks and print the verdicts (or the full result as JSON)."""
    with _progress(args) as progress:
        run = _run(args, progress, chart=False)
    print_run(run, args.json)
    return _exit_code(run)


def report(args: argparse.Namespace) -> int:
    """Run the checks, write the HTML or Markdown report, print the verdicts and where the report is."""
    chosen = args.format or (report_format(args.out) if args.out else "html")
    out = Path(args.out or f"report.{chosen}")
    with _progress(args) as progress:
        run = _run(args, progress, chart=True)
        progress.stage("writing the report")
        write_report(run, out, chosen)
    emit(format_run(run))
    emit(f"\nreport: {out.resolve()}")
    return _exit_code(run)


def check_all(args: argparse.Namespace) -> int:
    """Check every experiment the config file lists (and list those only in the data); exit 1 when
    any experiment alerts."""
    config = read_config(args.config)
    if args.report:
        report_format(args.report)
    with _progress(args) as progress:
        progress.stage("opening the source")
        monitor = _monitor(args, **_state_options(args))
        progress.stage("checking every experiment")
        with recording_sql(progress.on_statement):
            fleet = monitor.check_all(config, args.experiment_col)
        if args.report:
            progress.stage("writing the report")
            written = write_fleet_report(fleet, config, args.report)
    if args.json:
        emit(json.dumps(fleet_json(fleet), indent=2, allow_nan=False))
    else:
        emit(format_fleet(fleet))
    if args.report:
        emit(f"\nreport: {written.resolve()}", sys.stderr if args.json else sys.stdout)
    return EXIT_ALERT if fleet.alerting else EXIT_HEALTHY


def sql(args: argparse.Namespace) -> int:
    """Print the compiled queries; nothing connects to a database."""
    source = named_source(
        args.table,
        args.time_col,
        args.unit_col,
        args.variant_col,
        args.segment_col,
        args.metric_col,
        args.experiment_col,
    )
    compiled = check_queries(
        source,
        args.dialect,
        freq=args.freq,
        expected_ratios=parse_ratios(args.ratios),
        segment_cols=args.segment_col,
        metric_cols=args.metric_col,
        tz=args.tz,
        experiment_col=args.experiment_col,
    )
    emit("\n".join(compiled.values()), end="")
    return EXIT_HEALTHY


def demo(args: argparse.Namespace) -> int:
    """Write the synthetic log, check it, write the report, and say where the files are."""
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="xpyrment-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    notes = sys.stderr if args.json else sys.stdout
    with _progress(args) as progress:
        progress.stage("writing the synthetic log")
        spec = demo_log(folder / "exposures.parquet")
    if not args.json:
        emit(f"wrote {spec.rows_written:,} exposure rows to {spec.path}")
        emit(
            "planted: 15% of treatment units vanish from 2026-01-09 12:00 on; traffic falls to 20% from "
            "22:00 on the last day, whose 23:00 bin is still in progress (so 22:00 is the bin judged)\n"
        )
    with _progress(args) as progress:
        progress.stage("opening the source")
        with recording_sql(progress.on_statement) as opening:
            monitor = LiveMonitor(str(spec.path), time_col="ts")
        run = run_report(
            monitor,
            Design({"control": 1, "treatment": 1}),
            CheckSettings(freq="h"),
            source_name=DEMO_SOURCE_NAME,
            opening_statements=opening,
            on_statement=progress.on_statement,
        )
        progress.stage("writing the report")
        path = write_report(run, folder / "report.html")
    print_run(run, args.json)
    emit(f"\nreport: {path.resolve()}", notes)
    if args.out is None:
        where = folder.resolve()
        emit(f"files in {where}: remove them with `rm -r {shlex.quote(str(where))}` (or pass --out)", notes)
    return EXIT_HEALTHY


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": check,
    "report": report,
    "check-all": check_all,
    "sql": sql,
    "demo": demo,
}
"""Each command's function, by the name the parser gives it (``args.command``)."""


def _run(args: argparse.Namespace, progress: ProgressIndicator, *, chart: bool) -> MonitoringReport:
    """Open the source and run every check the options ask for (one run, as ``check`` and ``report``).

    The option values are parsed before the source is opened, so a typo costs no query.
    """
    design = Design(parse_ratios(args.ratios))
    settings = CheckSettings(
        freq=args.freq,
        window=args.window,
        z_threshold=args.z_threshold,
        drop_method=args.drop_method,
        srm_alpha=args.alpha,
        sequential_method=args.sequential_method,
    )
    metrics = [parse_metric(text) for text in args.metric]
    guardrails = [parse_guardrail(text) for text in args.guardrail]
    distinct_names(metrics, "--metric")
    distinct_names([g.metric for g in guardrails], "--guardrail")
    monitor, opening = _open_monitor(args, progress)
    return run_report(
        monitor,
        design,
        settings,
        source_name=_short_source_name(args, monitor),
        guardrails=guardrails,
        segment_cols=args.segment_col,
        metrics=metrics,
        opening_statements=opening,
        on_statement=progress.on_statement,
        chart=chart,
    )


def _dispatcher(args: argparse.Namespace) -> WebhookAlertDispatcher | None:
    """The dispatcher of the ``--slack``, ``--webhook`` and ``--pagerduty-key-env`` options (None
    without any).

    Raises:
        ParameterError: a ``--pagerduty-key-env`` variable is unset or empty (named, never its value).
    """
    dispatcher = WebhookAlertDispatcher(timeout=args.alert_timeout, deadline=args.alert_deadline)
    for url in args.slack:
        dispatcher.register_slack(url)
    for url in args.webhook:
        dispatcher.register_custom(url)
    for variable in args.pagerduty_key_env:
        key = os.environ.get(variable, "")
        if not key:
            raise ParameterError(
                f"--pagerduty-key-env {variable}: the environment variable is unset or empty; expected "
                "it to hold a PagerDuty routing key"
            )
        dispatcher.register_pagerduty(key)
    return dispatcher if dispatcher.handler_names else None


def _open_monitor(args: argparse.Namespace, progress: ProgressIndicator) -> tuple[LiveMonitor, list[str]]:
    """The monitor the options describe, and the SQL sent while opening the source."""
    progress.stage("opening the source")
    with recording_sql(progress.on_statement) as statements:
        monitor = _monitor(args, exact=not args.approx, **_state_options(args))
    return monitor, statements


def _state_options(args: argparse.Namespace) -> dict[str, Any]:
    """The monitor's state options from ``--state``, ``--lateness``, ``--full-refresh`` and ``--verify``."""
    return {
        "state": args.state,
        "lateness": args.lateness,
        "refresh": args.full_refresh,
        "verify": args.verify,
        "renotify": args.renotify,
    }


def _monitor(args: argparse.Namespace, **options: Any) -> LiveMonitor:
    """The monitor of the source and alert options every checking command has, with ``options``."""
    return LiveMonitor(
        args.source,
        time_col=args.time_col,
        dispatcher=_dispatcher(args),
        unit_col=args.unit_col,
        variant_col=args.variant_col,
        table=args.table,
        until=args.until,
        tz=args.tz,
        time_unit=args.time_unit,
        memory_limit=args.memory_limit,
        threads=args.threads,
        **options,
    )


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


def _progress(args: argparse.Namespace) -> ProgressIndicator:
    """Progress only for a person at a terminal: not when piped, logged, or asked for JSON."""
    return ProgressIndicator(sys.stderr, enabled=sys.stderr.isatty() and not args.json)


def _exit_code(run: MonitoringReport) -> int:
    """1 when an alert fired, else 0."""
    return EXIT_HEALTHY if run.telemetry.healthy else EXIT_ALERT
