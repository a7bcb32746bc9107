"""The shareable monitoring report: the checks' verdicts, traffic, SRM numbers, guardrails, chart and SQL.

:func:`run_report` runs :meth:`LiveMonitor.run_telemetry_checks` once, records the SQL it sent
(:mod:`xpyrment_sql.query_log`) and draws the traffic chart from the matrix that run fetched, so the
report costs no query beyond the checks. :func:`report_sections` lays the content out as headed
sections that :mod:`xpyrment_sql.report_formats` renders as HTML or Markdown.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xpyrment_sql import charts, query_log, report
from xpyrment_sql.results import Result, TelemetryReport
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION

if TYPE_CHECKING:
    from xpyrment_sql.assignment import Ratios
    from xpyrment_sql.guardrails import GuardrailMetric
    from xpyrment_sql.metric_results import GuardrailReport
    from xpyrment_sql.monitor import LiveMonitor

TRAFFIC_ROWS = 48
"""Bins shown in the traffic table (the most recent ones)."""


@dataclasses.dataclass(frozen=True, eq=False)
class MonitoringReport(Result):
    """One run of the checks, with everything the shareable report shows.

    Attributes:
        telemetry: What :meth:`LiveMonitor.run_telemetry_checks` returned.
        source_name: The log checked (passwords in URLs already redacted by the caller).
        started_at: When the run started (UTC).
        seconds: How long the run took, queries and chart included.
        statements: Every SQL statement sent, in order.
        settings: The check parameters, as ``(name, value)`` pairs for display.
        chart_png: The traffic chart as PNG bytes, or ``None`` (then ``chart_note`` says why).
        chart_note: Why there is no chart, or ``""``.
    """

    telemetry: TelemetryReport
    source_name: str
    started_at: pd.Timestamp
    seconds: float
    statements: tuple[str, ...]
    settings: tuple[tuple[str, Any], ...]
    chart_png: bytes | None = None
    chart_note: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """A table block: column names and rows of display strings."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True)
class Code:
    """A block of SQL under a short title."""

    title: str
    text: str


@dataclasses.dataclass(frozen=True)
class Chart:
    """The traffic chart (PNG) or, when it could not be drawn, the reason."""

    png: bytes | None
    note: str


Block = str | Table | Code | Chart
"""A paragraph (plain text), a table, a code block or the chart."""


@dataclasses.dataclass(frozen=True)
class Section:
    """A headed part of the report."""

    heading: str
    blocks: tuple[Block, ...]


def run_report(
    monitor: LiveMonitor,
    expected_ratios: Ratios,
    *,
    source_name: str,
    freq: str = "D",
    window: int = 7,
    z_threshold: float = 3.0,
    srm_alpha: float = 0.001,
    sequential_alpha: float = 0.01,
    concentration: float = DEFAULT_CONCENTRATION,
    min_units: int = 0,
    min_deviation: float = 0.0,
    max_multiple_exposure_share: float | None = 0.01,
    guardrails: Sequence[GuardrailMetric] = (),
    opening_statements: Sequence[str] = (),
    on_statement: Callable[[str], None] | None = None,
) -> MonitoringReport:
    """Run the checks once (anytime-valid sequential test) and collect what the report shows.

    Args:
        monitor: The monitor to run (alerts go to its dispatcher, as with ``run_telemetry_checks``).
        expected_ratios: Designed ratios (list aligned with sorted variant names, or dict).
        source_name: How the report names the log.
        freq: Bin size.
        window: Bins in the drop test's baseline.
        z_threshold: z-score of a traffic drop.
        srm_alpha: Level of the chi-square SRM test.
        sequential_alpha: Level of the anytime-valid SRM test.
        concentration: Prior weight of the anytime-valid test.
        min_units: No SRM verdict while a variant has fewer units.
        min_deviation: Smallest share deviation that counts as an SRM.
        max_multiple_exposure_share: Multiple-exposure threshold (``None`` skips that query).
        guardrails: Guardrail metrics to evaluate and report (one more query).
        opening_statements: SQL sent while opening the source (e.g. the Parquet time span), shown first.
        on_statement: Called with each statement just before it runs (progress display).
    """
    started_at = pd.Timestamp.now(tz="UTC")
    clock = time.perf_counter()
    with query_log.recording_sql(on_statement) as statements:
        telemetry = monitor.run_telemetry_checks(
            expected_ratios,
            freq=freq,
            window=window,
            z_threshold=z_threshold,
            srm_alpha=srm_alpha,
            sequential_alpha=sequential_alpha,
            concentration=concentration,
            min_units=min_units,
            min_deviation=min_deviation,
            max_multiple_exposure_share=max_multiple_exposure_share,
            guardrails=guardrails,
        )
    png, note = _chart(telemetry, expected_ratios, window, z_threshold, sequential_alpha, concentration)
    settings = (
        ("freq", freq),
        ("window", window),
        ("z_threshold", z_threshold),
        ("srm_alpha", srm_alpha),
        ("sequential_alpha", sequential_alpha),
        ("concentration", concentration),
        ("min_units", min_units),
        ("min_deviation", min_deviation),
        ("max_multiple_exposure_share", max_multiple_exposure_share),
    )
    return MonitoringReport(
        telemetry=telemetry,
        source_name=source_name,
        started_at=started_at,
        seconds=time.perf_counter() - clock,
        statements=(*opening_statements, *statements),
        settings=settings,
        chart_png=png,
        chart_note=note,
    )


def _chart(
    telemetry: TelemetryReport,
    expected_ratios: Ratios,
    window: int,
    z_threshold: float,
    alpha: float,
    concentration: float,
) -> tuple[bytes | None, str]:
    """The chart of the run's own traffic matrix, or why there is none."""
    if not telemetry.traffic.variants:
        return None, "No exposures: nothing to chart."
    try:
        figure = charts.traffic_figure(
            telemetry.traffic,
            expected_ratios,
            window=window,
            z_threshold=z_threshold,
            alpha=alpha,
            concentration=concentration,
        )
    except ImportError as exc:
        return None, f"No chart: {exc}."
    return charts.figure_bytes(figure, "png"), ""


def report_sections(run: MonitoringReport) -> list[Section]:
    """The report's content, format-neutral: verdicts, chart, traffic, SRM, guardrails, SQL, run."""
    telemetry = run.telemetry
    verdicts = Table(
        ("check", "status", "detail"),
        tuple((row.name, "ALERT" if row.fired else "ok", row.detail) for row in report.check_rows(telemetry)),
    )
    sections = [
        Section(
            "Verdict",
            (report.outcome(telemetry), *report.undelivered(telemetry), report.traffic_summary(telemetry)),
        ),
        Section("Checks", (verdicts,)),
        Section("Traffic chart", (Chart(run.chart_png, run.chart_note),)),
        Section("Traffic", _traffic_blocks(telemetry)),
        Section("Sample ratio mismatch", _srm_blocks(telemetry)),
    ]
    if telemetry.guardrails is not None:
        sections.append(Section("Guardrails", _guardrail_blocks(telemetry.guardrails)))
    sql = tuple(Code(f"{i}. {query_log.check_name(s)}", s) for i, s in enumerate(run.statements, 1))
    sections.append(Section("SQL that ran", sql or ("No query was sent.",)))
    settings = Table(("setting", "value"), tuple((name, _text(value)) for name, value in run.settings))
    sections.append(
        Section(
            "Run",
            (
                f"Source: {run.source_name}. Started {run.started_at.isoformat(timespec='seconds')}, "
                f"took {run.seconds:.1f} s, {len(run.statements)} SQL statement(s).",
                settings,
            ),
        )
    )
    return sections


def _traffic_blocks(telemetry: TelemetryReport) -> tuple[Block, ...]:
    traffic = telemetry.traffic
    if not traffic.variants:
        return ("No exposures found.",)
    active, new = traffic.binned("active"), traffic.binned("new")
    shown = active.tail(TRAFFIC_ROWS)
    header = (
        "bin",
        *(f"{v} units" for v in traffic.variants),
        *(f"{v} new" for v in traffic.variants),
    )
    rows = tuple(
        (
            str(label),
            *(f"{int(n):,}" for n in active.loc[label]),
            *(f"{int(n):,}" for n in new.loc[label]),
        )
        for label in shown.index
    )
    note = (
        f"Distinct units seen per {traffic.freq} bin (units) and units first exposed in it (new); "
        f"the last {len(shown)} of {len(traffic.bins)} bins."
    )
    return note, Table(header, rows)


def _srm_blocks(telemetry: TelemetryReport) -> tuple[Block, ...]:
    srm, sequential = telemetry.cumulative_srm, telemetry.sequential_srm
    if not srm.variants:
        return (srm.message,)
    counts = np.asarray(srm.observed_counts, dtype=float)
    total = counts.sum()
    rows = tuple(
        (str(v), f"{int(n):,}", f"{n / total:.4%}", f"{e / total:.4%}", f"{e:,.1f}", f"{n - e:+,.1f}")
        for v, n, e in zip(srm.variants, counts, srm.expected_counts, strict=True)
    )
    table = Table(("variant", "units", "observed share", "expected share", "expected units", "excess"), rows)
    chi = (
        f"Chi-square: X^2 = {srm.chi_square:.4g}, p = {srm.p_value:.4g} (alpha {srm.alpha:g}), "
        f"largest share deviation {srm.max_share_deviation:.4%}. {srm.message}"
    )
    return table, chi, f"Sequential: {sequential.message}"


def _guardrail_blocks(guarded: GuardrailReport) -> tuple[Block, ...]:
    rows = tuple(
        (
            g.metric_name,
            str(g.treatment),
            g.status,
            f"{g.relative_lift:+.2%}",
            f"[{g.relative_ci_lower:+.2%}, {g.relative_ci_upper:+.2%}]",
            f"{g.max_allowed_change:.2%} ({g.direction}, {g.method})",
            "yes" if g.shutoff else "no",
        )
        for g in guarded.results
    )
    header = ("metric", "treatment", "status", "relative lift", "CI", "allowed change", "shutoff")
    breaches = f"{len(guarded.breaches)} breach(es); shutoff required: {guarded.shutoff_required}."
    return Table(header, rows), breaches


def _text(value: Any) -> str:
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
