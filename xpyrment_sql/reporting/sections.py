"""The shareable report's content as format-neutral sections: headings, paragraphs, tables, SQL, chart.

:func:`report_sections` lays a :class:`~xpyrment_sql.reporting.records.MonitoringReport` out as headed
sections (:class:`Section`), each a run of blocks (:data:`Block`: a paragraph, a :class:`Table`, a
:class:`Code` block or the :class:`Chart`); :mod:`xpyrment_sql.reporting.documents` renders them as an
HTML page or as Markdown. Deciding here, once, what the report says keeps the two formats saying the
same thing. It reads the record only and sends no query.

The report leads with the verdicts and the bin the drop test judged (the latest complete bin); the bin
still in progress at the evaluation instant is shown, newest first, marked "in progress".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xpyrment_sql.reporting import text as report
from xpyrment_sql.results import DeliveryRecord, SegmentSRMResult, TelemetryReport

if TYPE_CHECKING:
    from xpyrment_sql.reporting.records import MonitoringReport
    from xpyrment_sql.results.metrics import GuardrailReport, MetricsReport

TRAFFIC_ROWS = 48
"""Bins shown in the traffic table (the most recent ones)."""


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


def report_sections(run: MonitoringReport) -> list[Section]:
    """The report's content, format-neutral: verdicts, chart, traffic, SRM, segments, metrics, SQL, run."""
    telemetry = run.telemetry
    verdicts = _checks_table(telemetry)
    lead = (
        report.outcome(telemetry),
        *report.undelivered(telemetry),
        *report.judged_lines(telemetry),
        report.unit_line(run.unit_col, run.unit_rule),
        report.state_line(telemetry),
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
    if telemetry.state is not None and telemetry.state.deliveries:
        sections.append(Section("Alert deliveries", delivery_blocks(telemetry.state.deliveries)))
    sql = tuple(Code(f"{i}. {s.check}", s.sql) for i, s in enumerate(run.statements, 1))
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


def delivery_blocks(deliveries: Sequence[DeliveryRecord]) -> tuple[Block, ...]:
    """The delivery history the state file keeps, newest first: when, to which handler (kind and
    host, never the URL), which alert, trigger or resolve, the outcome and the attempts it took."""
    rows = tuple(
        (
            record.sent_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            record.handler,
            record.key,
            record.action,
            record.outcome,
            str(record.attempts),
            record.reason or ("" if record.status is None else f"HTTP {record.status}"),
        )
        for record in deliveries
    )
    lead = f"The {len(rows)} most recent deliveries kept in the state file, newest first."
    header = ("sent", "handler", "alert", "action", "outcome", "attempts", "detail")
    return (lead, Table(header, rows))


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


def experiment_blocks(telemetry: TelemetryReport, chart: Chart) -> tuple[Block, ...]:
    """One experiment of a fleet report: its outcome, checks, chart, split and newest bins."""
    checks = _checks_table(telemetry)
    return (
        report.outcome(telemetry),
        *report.judged_lines(telemetry),
        checks,
        chart,
        *_srm_blocks(telemetry),
        *_traffic_blocks(telemetry),
    )


def _checks_table(telemetry: TelemetryReport) -> Table:
    """One row per check: its name, ``ALERT`` or ``ok``, and the numbers behind the verdict."""
    return Table(
        ("check", "status", "detail"),
        tuple((row.name, "ALERT" if row.fired else "ok", row.detail) for row in report.check_rows(telemetry)),
    )
