"""Plain-text rendering of a :class:`~xpyrment_sql.results.TelemetryReport` for terminals and logs.

The pieces (check verdicts, the traffic summary, the outcome) are shared with the HTML and Markdown
report in :mod:`xpyrment_sql.report_formats`, so every format says the same thing.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from xpyrment_sql.results import AnytimeSRMResult, TelemetryReport

_RECENT_BINS = 6


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
    return rows


def traffic_summary(report: TelemetryReport) -> str:
    """Units, variants and the span of bins, in one sentence."""
    traffic = report.traffic
    if not traffic.variants:
        return "no exposures found"
    return (
        f"{int(traffic.units.sum()):,} units in {len(traffic.variants)} variants, {len(traffic.bins)} bins "
        f"of {traffic.freq} from {traffic.bins[0]} to {traffic.bins[-1]}"
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


def format_report(report: TelemetryReport, source_name: str) -> str:
    """A readable summary: one line per check, the last bins of traffic, and the alerts."""
    traffic = report.traffic
    lines = [f"xpyrment-sql check: {source_name}", traffic_summary(report)]
    lines += ["", f"{'check':<24}{'status':<8}detail"]
    lines += [_row(row.name, row.fired, row.detail) for row in check_rows(report)]
    if traffic.variants:
        recent = traffic.binned().tail(_RECENT_BINS)
        lines += ["", f"distinct units in the last {len(recent)} bins:", recent.to_string()]
    lines += ["", outcome(report), *undelivered(report)]
    return "\n".join(lines)


def _row(name: str, fired: bool, detail: str) -> str:
    return f"{name:<24}{'ALERT' if fired else 'ok':<8}{detail}"


def _anomaly_detail(report: TelemetryReport) -> str:
    anomaly = report.traffic_anomaly
    if anomaly.historical_std == 0 and anomaly.z_score == 0:
        return anomaly.message
    return (
        f"latest bin {anomaly.latest_volume:,.0f} units vs mean {anomaly.historical_mean:,.0f} "
        f"(sd {anomaly.historical_std:,.1f}), z = {anomaly.z_score:.2f}"
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
        return "anytime-valid SRM"
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
