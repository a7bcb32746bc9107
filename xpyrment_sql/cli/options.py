"""The command line's options: the argparse definitions, and the parsers of the compact option syntax.

Metric and guardrail options take a compact form, ``COLUMN:KIND`` and
``COLUMN:KIND:DIRECTION:TOLERANCE[:ci][:shutoff]``: ``KIND`` is ``mean``, ``proportion`` or
``ratio`` (then ``COLUMN`` is ``NUMERATOR/DENOMINATOR``), ``DIRECTION`` is ``increase``,
``decrease`` or ``both``, and ``TOLERANCE`` the relative change allowed (``0.02`` or ``2%``).
A value that does not parse raises a :class:`~xpyrment_sql.errors.ParameterError` naming the option,
the value and the form expected, so the command exits 2 with that sentence.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from xpyrment_sql.alerts.dispatcher import DEFAULT_TIMEOUT
from xpyrment_sql.checks.guardrails import DIRECTIONS, GuardrailMetric
from xpyrment_sql.checks.metrics import MeanMetric, Metric, ProportionMetric, RatioMetric
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.settings import SEQUENTIAL_METHODS, CheckSettings

DROP_METHODS = ("seasonal", "zscore")
METRIC_FORM = "COLUMN:KIND (KIND mean, proportion or ratio; a ratio's COLUMN is NUMERATOR/DENOMINATOR)"
GUARDRAIL_FORM = (
    "COLUMN:KIND:DIRECTION:TOLERANCE[:ci][:shutoff], e.g. latency:mean:increase:0.02 or "
    "revenue/orders:ratio:decrease:5%"
)
_GUARDRAIL_FLAGS = ("point", "ci", "shutoff")


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


def distinct_names(metrics: Sequence[Metric], option: str) -> None:
    """Reject two metrics of one option with the same name (results are looked up by name)."""
    names = [m.name for m in metrics]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(f"{option} names {', '.join(map(repr, twice))} more than once; give each once")


def build_parser() -> argparse.ArgumentParser:
    """The ``xpyrment-sql`` parser: ``args.command`` is ``check``, ``report``, ``check-all``, ``sql`` or
    ``demo``."""
    parser = argparse.ArgumentParser(
        prog="xpyrment-sql", description="Health checks for running A/B experiments."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="run the traffic and SRM checks on an exposure log")
    _add_check_arguments(check)
    check.add_argument("--json", action="store_true", help="print the full result as one JSON object")

    report = commands.add_parser(
        "report", help="run the checks and write a self-contained HTML (or Markdown) report"
    )
    _add_check_arguments(report)
    report.add_argument("--out", default=None, help="report file (default: report.html or report.md)")
    report.add_argument(
        "--format", choices=("html", "md"), help="html (default) or md; without it, --out's suffix decides"
    )
    report.set_defaults(json=False)

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
    sql.add_argument("--experiment-col", help="experiment column: also print check-all's fleet query")

    fleet = commands.add_parser(
        "check-all", help="check every experiment of a table holding many, as a config file describes"
    )
    fleet.add_argument("source", help="Parquet/CSV path or glob, or a connection URL (with --table)")
    fleet.add_argument("--config", required=True, help="TOML file: each experiment's design and checks")
    fleet.add_argument("--experiment-col", required=True, help="column naming each row's experiment")
    fleet.add_argument("--table", help="table name when SOURCE is a connection URL")
    fleet.add_argument("--time-col", required=True, help="exposure timestamp column")
    fleet.add_argument("--unit-col", help="unit column (default: unit_id if present, else the first)")
    fleet.add_argument("--variant-col", default="variant", help="variant column (default: variant)")
    fleet.add_argument(
        "--until", help="evaluate as of this time, or 'now' (later rows ignored; its bin is in progress)"
    )
    fleet.add_argument("--tz", help="time zone whose midnight starts day bins (default: UTC)")
    fleet.add_argument(
        "--time-unit", choices=("s", "ms", "us", "ns"), help="unit of an epoch-number time column"
    )
    fleet.add_argument("--memory-limit", help="memory budget of the embedded DuckDB, e.g. 8GB")
    fleet.add_argument("--threads", type=int, help="threads of the embedded DuckDB (default: all cores)")
    _add_alert_arguments(fleet)
    _add_state_arguments(fleet)
    fleet.add_argument("--json", action="store_true", help="print one JSON object per experiment")
    fleet.add_argument(
        "--report", metavar="FILE", help="also write the fleet report: FILE.html (one page) or FILE.md"
    )

    demo = commands.add_parser("demo", help="generate a log with a planted problem and check it")
    demo.add_argument("--out", help="folder for the generated log and report (default: a new temp folder)")
    demo.add_argument("--json", action="store_true", help="print the full result as JSON")
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
        "--sequential-method",
        choices=SEQUENTIAL_METHODS,
        default=CheckSettings.sequential_method,
        help="sequential SRM test: anytime (cumulative mixture), changepoint (also bets on a break "
        f"starting on a later day), sprt (the seed's); default {CheckSettings.sequential_method}",
    )
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
    _add_alert_arguments(command)
    _add_state_arguments(command)


def _add_state_arguments(command: argparse.ArgumentParser) -> None:
    """The state file (``--state``) and how it is used (``--lateness``, ``--full-refresh``, ``--verify``)."""
    command.add_argument(
        "--state",
        metavar="FILE",
        help="local state file: later runs read only the rows since the last one (files and DataFrames)",
    )
    command.add_argument(
        "--lateness",
        default="1h",
        help="with --state: how late a row may arrive and still be counted (default: 1h)",
    )
    command.add_argument(
        "--full-refresh", action="store_true", help="with --state: rebuild it from the whole log"
    )
    command.add_argument(
        "--verify",
        action="store_true",
        help="with --state: also recompute from the whole log and report any difference",
    )
    command.add_argument(
        "--renotify",
        default="24h",
        help="with --state: send an alert that stays active again after this long (default: 24h); "
        "alerts are sent once at onset, and a resolve when they clear",
    )


def _add_alert_arguments(command: argparse.ArgumentParser) -> None:
    """Where alerts go (``--slack``, ``--webhook``, ``--pagerduty-key-env``, repeatable) and how long
    each delivery may take."""
    command.add_argument("--slack", action="append", default=[], help="Slack webhook URL for alerts")
    command.add_argument("--webhook", action="append", default=[], help="HTTP endpoint for alerts")
    command.add_argument(
        "--pagerduty-key-env",
        action="append",
        default=[],
        metavar="VAR",
        help="environment variable holding a PagerDuty Events API v2 routing key (a secret: never "
        "on the command line)",
    )
    command.add_argument(
        "--alert-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one attempt at a webhook may take (default: {DEFAULT_TIMEOUT:g})",
    )
    command.add_argument(
        "--alert-deadline",
        type=float,
        help="seconds all attempts at one webhook may take, retries included (default: 3 x the timeout)",
    )
