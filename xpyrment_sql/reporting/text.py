"""Plain text for terminals and logs: the summary ``xpyrment-sql check`` prints, and the phrases it shares.

:func:`format_report` (of a :class:`~xpyrment_sql.results.TelemetryReport`) and :func:`format_run` (of a
:class:`~xpyrment_sql.reporting.records.MonitoringReport`) give the summary. The pieces they are built
from (the check verdicts, the judged bin, the traffic summary, the outcome, display numbers) are also
the sentences of the HTML and Markdown report (:mod:`xpyrment_sql.reporting.sections`), so every format
says the same thing.

One vocabulary: "units" are distinct units. A variant's units are the distinct units seen under it;
totals summed over variants count a unit seen under two variants twice, so they are called
"(unit, variant) pairs", and the distinct total comes from the multiple-exposure check when it ran.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from xpyrment_sql.results import AnytimeSRMResult, SegmentSRMResult, TelemetryReport, TrafficMatrix

if TYPE_CHECKING:
    from xpyrment_sql.reporting.records import MonitoringReport
    from xpyrment_sql.results.metrics import MetricsReport

_RECENT_BINS = 6
_SEGMENT_LINES = 10
IN_PROGRESS = "in progress"
"""How the bin still in progress at the evaluation instant is marked in every format."""


class CheckRow(NamedTuple):
    """One check's line in a report: its name, whether it alerted, and the numbers behind it."""

    name: str
    fired: bool
    detail: str


def check_rows(report: TelemetryReport) -> list[CheckRow]:
    """The verdict of every check that ran, in the order the report shows them."""
    rows = [
        CheckRow("traffic anomaly", report.traffic_anomaly.anomaly_detected, _anomaly_detail(report)),
        CheckRow("SRM (chi-square)", report.cumulative_srm.srm_detected, _srm_detail(report)),
        CheckRow(_sequential_name(report), report.sequential_srm.srm_detected, _sequential_detail(report)),
    ]
    if report.multiple_exposure is not None:
        exposure = report.multiple_exposure
        rows.append(CheckRow("multiple exposure", exposure.multiple_exposure_detected, exposure.message))
    if report.guardrails is not None:
        rows += [
            CheckRow(f"guardrail {g.metric_name} ({g.treatment})", g.breached, g.message)
            for g in report.guardrails.results
        ]
    return rows


def bin_label(traffic: TrafficMatrix, start: pd.Timestamp) -> str:
    """A bin's start as shown in tables, ``"... (in progress)"`` for the unfinished last bin."""
    label = str(start)
    if traffic.unfinished and len(traffic.bins) and start == traffic.bins[-1]:
        return f"{label} ({IN_PROGRESS})"
    return label


def judged_lines(report: TelemetryReport) -> list[str]:
    """Which bin the drop test judged, and that the last bin is unfinished (never judged) when it is."""
    traffic, anomaly = report.traffic, report.traffic_anomaly
    if not traffic.variants:
        return []
    if anomaly.judged_bin is None:
        lines = ["Judged bin: none; no bin was complete at the evaluation instant."]
    else:
        lines = [f"Judged bin: {anomaly.judged_bin}, the latest complete {traffic.freq} bin."]
    if traffic.unfinished:
        unfinished = anomaly.unfinished_bin if anomaly.unfinished_bin is not None else traffic.bins[-1]
        instant = ""
        if traffic.evaluated_at is not None:
            instant = f" at {traffic.evaluated_at.isoformat(sep=' ', timespec='seconds')}"
        lines.append(
            f"The last bin, {unfinished}, is unfinished ({IN_PROGRESS}{instant}): shown, never judged."
        )
    return lines


def state_line(report: TelemetryReport) -> str:
    """What a run with a state file read and whether its verification agreed, or ``""`` without one."""
    state = report.state
    if state is None:
        return ""
    if state.full_build:
        line = f"State {state.state_path}: built from the whole log"
    else:
        line = f"State {state.state_path}: read the rows from {state.since} on"
    line += f", watermark {state.watermark}." if state.watermark is not None else "."
    if state.verified is True:
        line += " Verified: a full recomputation gives the same numbers."
    elif state.verified is False:
        line += " VERIFY FAILED: " + "; ".join(state.differences) + " (run with --full-refresh)."
    return line


def unit_line(unit_col: str | None, unit_rule: str | None = None) -> str:
    """``"Unit column: user_id (rule)"``, or ``""`` when the unit column is not known."""
    if not unit_col:
        return ""
    return f"Unit column: {unit_col}" + (f" ({unit_rule})." if unit_rule else ".")


def traffic_summary(report: TelemetryReport) -> str:
    """Distinct units, variants and the span of bins, in one sentence."""
    traffic = report.traffic
    if not traffic.variants:
        return "no exposures found"
    pairs = int(traffic.units.sum())
    exposure = report.multiple_exposure
    if exposure is None:
        counted = f"{pairs:,} (unit, variant) pairs (a unit seen under two variants counts twice)"
    elif exposure.multiple_units == 0:
        counted = f"{exposure.units:,} distinct units (none seen under more than one variant)"
    else:
        counted = (
            f"{exposure.units:,} distinct units ({pairs:,} (unit, variant) pairs; "
            f"{exposure.multiple_units:,} units seen under more than one variant)"
        )
    last = f"{traffic.bins[-1]}" + (f" ({IN_PROGRESS})" if traffic.unfinished else "")
    return (
        f"{counted} in {len(traffic.variants)} variants, {len(traffic.bins)} bins "
        f"of {traffic.freq} from {traffic.bins[0]} to {last}"
    )


def outcome(report: TelemetryReport) -> str:
    """The alerts that fired (and whether shutoff triggered), or that the experiment is healthy."""
    if report.alerts_triggered:
        shutoff = " (shutoff triggered)" if report.shutoff_triggered else ""
        return f"ALERTS: {', '.join(report.alerts_triggered)}{shutoff}"
    return "healthy: no alert fired"


def undelivered(report: TelemetryReport) -> list[str]:
    """One line per alert some handler failed to deliver."""
    return [
        f"alert {outcome.alert_type} not delivered to: {', '.join(outcome.failed)}"
        for outcome in report.dispatches
        if outcome.failed
    ]


def number(value: Any) -> str:
    """A display number: integers with thousands separators, large floats rounded, small ones 4 digits."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "n/a" if math.isnan(value) else str(value)
        return f"{value:,.0f}" if abs(value) >= 1_000 or float(value).is_integer() else f"{value:.4g}"
    return str(value)


def frame_cells(frame: pd.DataFrame) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Any result table as its column names and rows of display strings (see :func:`number`)."""
    header = tuple(str(column) for column in frame.columns)
    rows = tuple(tuple(number(value) for value in row) for row in frame.itertuples(index=False))
    return header, rows


def format_report(
    report: TelemetryReport,
    source_name: str,
    *,
    unit_col: str | None = None,
    unit_rule: str | None = None,
    segments: SegmentSRMResult | None = None,
    metrics: MetricsReport | None = None,
) -> str:
    """A readable summary: the outcome and judged bin first, one line per check, the newest bins."""
    traffic = report.traffic
    lead = [
        outcome(report),
        *undelivered(report),
        *judged_lines(report),
        unit_line(unit_col, unit_rule),
        state_line(report),
    ]
    lines = [f"xpyrment-sql check: {source_name}", *(line for line in lead if line), traffic_summary(report)]
    lines += ["", f"{'check':<24}{'status':<8}detail"]
    lines += [_row(row.name, row.fired, row.detail) for row in check_rows(report)]
    if traffic.variants:
        recent = traffic.binned().iloc[::-1].head(_RECENT_BINS)
        recent.index = pd.Index([bin_label(traffic, b) for b in recent.index], name="bin")
        table = recent.map(lambda n: f"{int(n):,}").to_string()
        lines += ["", f"distinct units per variant in the newest {len(recent)} bins (newest first):", table]
    if segments is not None:
        lines += ["", f"SRM by segment: {segments.message}", _segment_text(segments.table)]
    if metrics is not None:
        lines += ["", "metrics (relative lift against control, CI):"]
        lines += [
            f"  {m.metric_name} ({m.treatment}): {m.relative_lift:+.2%} "
            f"[{m.relative_ci_lower:+.2%}, {m.relative_ci_upper:+.2%}], p = {m.p_value:.3g}"
            for m in metrics.results
        ]
    return "\n".join(lines)


def format_run(run: MonitoringReport) -> str:
    """:func:`format_report` of one monitoring run's record (what ``xpyrment-sql check`` prints)."""
    return format_report(
        run.telemetry,
        run.source_name,
        unit_col=run.unit_col,
        unit_rule=run.unit_rule,
        segments=run.segments,
        metrics=run.metrics,
    )


def _segment_text(table: pd.DataFrame) -> str:
    header, rows = frame_cells(table.head(_SEGMENT_LINES))
    return pd.DataFrame(list(rows), columns=list(header)).to_string(index=False) if rows else ""


def _row(name: str, fired: bool, detail: str) -> str:
    return f"{name:<24}{'ALERT' if fired else 'ok':<8}{detail}"


def _anomaly_detail(report: TelemetryReport) -> str:
    anomaly = report.traffic_anomaly
    if anomaly.historical_std == 0 and anomaly.z_score == 0:
        return anomaly.message
    baseline = (
        f"same bin in {anomaly.cycles} earlier cycle(s) of {anomaly.cycle_bins} bins"
        if anomaly.method == "seasonal"
        else "the bins before it"
    )
    return (
        f"{anomaly.method} test: judged bin {anomaly.latest_volume:,.0f} (unit, variant) pairs vs "
        f"{anomaly.historical_mean:,.0f} expected from {baseline} (sd {anomaly.historical_std:,.1f}), "
        f"z = {anomaly.z_score:.2f} (drop below -{anomaly.threshold:.3g})"
    )


def _srm_detail(report: TelemetryReport) -> str:
    srm = report.cumulative_srm
    if not srm.variants:
        return srm.message
    counts = np.asarray(srm.observed_counts, dtype=float)
    expected = np.asarray(srm.expected_counts, dtype=float)
    shares = ", ".join(
        f"{v} {n / counts.sum():.2%} (exp. {e / counts.sum():.2%})"
        for v, n, e in zip(srm.variants, counts, expected, strict=True)
    )
    return f"p = {srm.p_value:.3g} (alpha {srm.alpha:g}); {shares}"


def _sequential_name(report: TelemetryReport) -> str:
    if isinstance(report.sequential_srm, AnytimeSRMResult):
        return "change-point SRM" if report.sequential_srm.method == "changepoint" else "anytime-valid SRM"
    return "sequential SRM (SPRT)"


def _sequential_detail(report: TelemetryReport) -> str:
    sequential = report.sequential_srm
    if isinstance(sequential, AnytimeSRMResult):
        return sequential.message
    if sequential.srm_detected:
        return f"crossed 1/alpha at unit #{sequential.stopped_index:,} ({sequential.stopped_at})"
    if sequential.treatment is None:
        return sequential.message
    last = sequential.running_likelihood_ratios[-1] if len(sequential.running_likelihood_ratios) else 1.0
    return f"no crossing; LR at the last bin {last:.3g} < {1 / sequential.alpha:g}"
