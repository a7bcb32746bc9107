"""The shareable monitoring report: the checks' verdicts, traffic, SRM numbers, guardrails, chart and SQL.

:func:`run_report` runs :meth:`LiveMonitor.run_telemetry_checks` once (and, when asked, the SRM per
segment and the metrics), records the SQL it sent (:mod:`xpyrment_sql.queries.log`) and draws the traffic
chart from the matrix that run fetched, so the report costs no query beyond the checks.
:func:`report_sections` lays the content out as headed sections that :mod:`xpyrment_sql.reporting.formats`
renders as HTML or Markdown; it reads the records only and sends no query.

The report leads with the verdicts and the bin the drop test judged (the latest complete bin); the bin
still in progress at the evaluation instant is shown, newest first, marked "in progress".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xpyrment_sql.queries import log as query_log
from xpyrment_sql.reporting import charts
from xpyrment_sql.reporting import text as report
from xpyrment_sql.results import Result, SegmentSRMResult, TelemetryReport
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION

if TYPE_CHECKING:
    from xpyrment_sql.checks.guardrails import GuardrailMetric
    from xpyrment_sql.checks.metrics import Metric
    from xpyrment_sql.monitor import LiveMonitor
    from xpyrment_sql.results.metrics import GuardrailReport, MetricsReport
    from xpyrment_sql.settings import Ratios

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
        segments: The SRM per segment (:meth:`LiveMonitor.check_srm_by`), or ``None``.
        metrics: The metrics against control (:meth:`LiveMonitor.calculate_metrics`), or ``None``.
        unit_col: The randomisation unit column the distinct counts are of.
        unit_rule: How the unit column was chosen, in words (``Source.unit_rule_text``).
    """

    telemetry: TelemetryReport
    source_name: str
    started_at: pd.Timestamp
    seconds: float
    statements: tuple[str, ...]
    settings: tuple[tuple[str, Any], ...]
    chart_png: bytes | None = None
    chart_note: str = ""
    segments: SegmentSRMResult | None = None
    metrics: MetricsReport | None = None
    unit_col: str = ""
    unit_rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """One JSON-able object: the telemetry's fields, then the segments, metrics and unit column.

        The telemetry's fields stay at the top level (its ``guardrails`` among them), so readers of
        the telemetry record's JSON keep working.
        """
        return {
            "source": self.source_name,
            "unit_col": self.unit_col,
            "unit_rule": self.unit_rule,
            **self.telemetry.to_dict(),
            "segment_srm": None if self.segments is None else self.segments.to_dict(),
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
        }


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
    z_threshold: float | None = None,
    drop_method: str = "seasonal",
    srm_alpha: float = 0.001,
    sequential_alpha: float = 0.01,
    concentration: float = DEFAULT_CONCENTRATION,
    min_units: int = 0,
    min_deviation: float = 0.0,
    max_multiple_exposure_share: float | None = 0.01,
    guardrails: Sequence[GuardrailMetric] = (),
    segment_cols: Sequence[str] = (),
    metrics: Sequence[Metric] = (),
    opening_statements: Sequence[str] = (),
    on_statement: Callable[[str], None] | None = None,
    chart: bool = True,
) -> MonitoringReport:
    """Run the checks once (anytime-valid sequential test) and collect what the report shows.

    Args:
        monitor: The monitor to run (alerts go to its dispatcher, as with ``run_telemetry_checks``).
        expected_ratios: Designed ratios (list aligned with sorted variant names, or dict).
        source_name: How the report names the log (a short name, not a temporary path).
        freq: Bin size.
        window: Bins in the z-score drop test's baseline.
        z_threshold: z-score below ``-z_threshold`` that counts as a drop; ``None`` takes the drop
            method's calibrated default.
        drop_method: ``"seasonal"`` (the judged bin against the same bin in earlier cycles) or
            ``"zscore"`` (against the ``window`` bins before it).
        srm_alpha: Level of the chi-square SRM test, and of the SRM per segment.
        sequential_alpha: Level of the anytime-valid SRM test.
        concentration: Prior weight of the anytime-valid test.
        min_units: No SRM verdict while a variant has fewer units.
        min_deviation: Smallest share deviation that counts as an SRM.
        max_multiple_exposure_share: Multiple-exposure threshold (``None`` skips that query).
        guardrails: Guardrail metrics to evaluate and report (one more query).
        segment_cols: Columns whose value combinations are the segments of
            :meth:`LiveMonitor.check_srm_by` (one more query), run after the telemetry checks.
        metrics: Metrics for :meth:`LiveMonitor.calculate_metrics` (one more query).
        opening_statements: SQL sent while opening the source (e.g. the Parquet time span), shown first.
        on_statement: Called with each statement just before it runs (progress display).
        chart: Draw the traffic chart (the ``check`` command, which writes no report, does not).
    """
    started_at = pd.Timestamp.now(tz="UTC")
    clock = time.perf_counter()
    with query_log.recording_sql(on_statement) as statements:
        telemetry = monitor.run_telemetry_checks(
            expected_ratios,
            freq=freq,
            window=window,
            z_threshold=z_threshold,
            drop_method=drop_method,
            srm_alpha=srm_alpha,
            sequential_alpha=sequential_alpha,
            concentration=concentration,
            min_units=min_units,
            min_deviation=min_deviation,
            max_multiple_exposure_share=max_multiple_exposure_share,
            guardrails=guardrails,
        )
        segments = None
        if segment_cols:
            segments = monitor.check_srm_by(list(segment_cols), expected_ratios, alpha=srm_alpha)
        calculated = monitor.calculate_metrics(list(metrics)) if metrics else None
    png, note = None, ""
    if chart:
        png, note = _chart(
            telemetry, expected_ratios, window, z_threshold, drop_method, sequential_alpha, concentration
        )
    settings = (
        ("freq", freq),
        ("drop_method", drop_method),
        ("window", window),
        ("z_threshold", "method default" if z_threshold is None else z_threshold),
        ("srm_alpha", srm_alpha),
        ("sequential_alpha", sequential_alpha),
        ("concentration", concentration),
        ("min_units", min_units),
        ("min_deviation", min_deviation),
        ("max_multiple_exposure_share", max_multiple_exposure_share),
        ("segment_cols", ", ".join(segment_cols) or None),
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
        segments=segments,
        metrics=calculated,
        unit_col=monitor.unit_col,
        unit_rule=monitor.source.unit_rule_text,
    )


def _chart(
    telemetry: TelemetryReport,
    expected_ratios: Ratios,
    window: int,
    z_threshold: float | None,
    drop_method: str,
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
            drop_method=drop_method,
            alpha=alpha,
            concentration=concentration,
        )
    except ImportError as exc:
        return None, f"No chart: {exc}."
    return charts.figure_bytes(figure, "png"), ""


def report_sections(run: MonitoringReport) -> list[Section]:
    """The report's content, format-neutral: verdicts, chart, traffic, SRM, segments, metrics, SQL, run."""
    telemetry = run.telemetry
    verdicts = Table(
        ("check", "status", "detail"),
        tuple((row.name, "ALERT" if row.fired else "ok", row.detail) for row in report.check_rows(telemetry)),
    )
    lead = (
        report.outcome(telemetry),
        *report.undelivered(telemetry),
        *report.judged_lines(telemetry),
        report.unit_line(run.unit_col, run.unit_rule),
        report.traffic_summary(telemetry),
    )
    sections = [
        Section("Verdict", tuple(line for line in lead if line)),
        Section("Checks", (verdicts,)),
        Section("Traffic chart", (Chart(run.chart_png, run.chart_note),)),
        Section("Traffic", _traffic_blocks(telemetry)),
        Section("Sample ratio mismatch", _srm_blocks(telemetry)),
    ]
    if run.segments is not None:
        sections.append(Section("SRM by segment", _segment_blocks(run.segments)))
    if run.metrics is not None:
        sections.append(Section("Metrics", _metric_blocks(run.metrics)))
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
    """The newest bins first, the unfinished one marked "in progress"."""
    traffic = telemetry.traffic
    if not traffic.variants:
        return ("No exposures found.",)
    active, new = traffic.binned("active"), traffic.binned("new")
    shown = active.index[::-1][:TRAFFIC_ROWS]
    header = (
        "bin",
        *(f"{v} units" for v in traffic.variants),
        *(f"{v} new" for v in traffic.variants),
    )
    rows = tuple(
        (
            report.bin_label(traffic, label),
            *(f"{int(n):,}" for n in active.loc[label]),
            *(f"{int(n):,}" for n in new.loc[label]),
        )
        for label in shown
    )
    note = (
        f"Distinct units of each variant seen per {traffic.freq} bin (units) and first exposed in it "
        f"(new); the newest {len(shown)} of {len(traffic.bins)} bins, newest first."
    )
    if traffic.unfinished:
        note += " The first row is the bin still in progress: it holds only part of its traffic."
    return note, Table(header, rows)


def _srm_blocks(telemetry: TelemetryReport) -> tuple[Block, ...]:
    srm, sequential = telemetry.cumulative_srm, telemetry.sequential_srm
    if not srm.variants:
        return (srm.message,)
    counts = np.asarray(srm.observed_counts, dtype=float)
    total = counts.sum()
    rows = tuple(
        (str(v), f"{int(n):,}", f"{n / total:.4%}", f"{e / total:.4%}", f"{round(e):,}", f"{round(n - e):+,}")
        for v, n, e in zip(srm.variants, counts, srm.expected_counts, strict=True)
    )
    table = Table(("variant", "units", "observed share", "expected share", "expected units", "excess"), rows)
    chi = (
        f"Chi-square on distinct units per variant: X^2 = {srm.chi_square:.4g}, p = {srm.p_value:.4g} "
        f"(alpha {srm.alpha:g}), largest share deviation {srm.max_share_deviation:.4%}. {srm.message}"
    )
    return table, chi, f"Sequential: {sequential.message}"


SEGMENT_ROWS = 20
"""Segments shown in the per-segment SRM table (the largest shares of the segments' chi-square)."""


def _segment_blocks(segments: SegmentSRMResult) -> tuple[Block, ...]:
    """The segment result's message and its table, whatever columns the table holds."""
    header, rows = report.frame_cells(segments.table.head(SEGMENT_ROWS))
    shown = (
        f"The {len(rows)} of {len(segments.table)} rows with the largest share of the segments' chi-square."
    )
    return segments.message, shown, Table(header, rows)


def _metric_blocks(metrics: MetricsReport) -> tuple[Block, ...]:
    rows = tuple(
        (
            m.metric_name,
            str(m.treatment),
            report.number(m.control_value),
            report.number(m.treatment_value),
            f"{m.relative_lift:+.2%}",
            f"[{m.relative_ci_lower:+.2%}, {m.relative_ci_upper:+.2%}]",
            f"{m.p_value:.4g}",
            f"{m.n_control:,}",
            f"{m.n_treatment:,}",
        )
        for m in metrics.results
    )
    header = (
        "metric", "treatment", f"control ({metrics.control})", "treatment value", "relative lift", "CI",
        "p-value", "control units", "treatment units",
    )  # fmt: skip
    return (Table(header, rows),)


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
