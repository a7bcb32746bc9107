"""The record one monitoring run leaves behind for rendering: :class:`MonitoringReport`.

The command line runs the checks once and collects what they returned, the SQL they sent and the chart
into this record (see ``xpyrment_sql.cli.run``); every renderer in this package reads it and nothing
else. Keeping the record here, beside its renderers, lets ``reporting/`` depend on result records only:
it never sees the monitor, the checks or the queries that produced them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from xpyrment_sql.results import Result, SegmentSRMResult, TelemetryReport

if TYPE_CHECKING:
    from xpyrment_sql.results.metrics import MetricsReport


class SentStatement(NamedTuple):
    """One SQL statement a run sent, and the check it served (``"query"`` when not recognised)."""

    check: str
    sql: str


@dataclasses.dataclass(frozen=True, eq=False)
class MonitoringReport(Result):
    """One run of the checks, with everything the shareable report shows.

    Attributes:
        telemetry: What :meth:`LiveMonitor.run_telemetry_checks` returned.
        source_name: The log checked (passwords in URLs already redacted by the caller).
        started_at: When the run started (UTC).
        seconds: How long the run took, queries and chart included.
        statements: Every SQL statement sent, in order, each named by the check it served.
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
    statements: tuple[SentStatement, ...]
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
