"""One run of the checks for ``check``, ``report`` and ``demo``: everything the report shows, in one record.

:func:`run_report` runs :meth:`LiveMonitor.run_telemetry_checks` once (and, when asked, the SRM per
segment and the metrics), records the SQL it sent, named by the check each statement served
(:mod:`xpyrment_sql.queries.log`), and draws the traffic chart from the matrix that run fetched, so the
report costs no query beyond the checks. The result is a
:class:`~xpyrment_sql.reporting.records.MonitoringReport`, which :mod:`xpyrment_sql.reporting` renders
without ever seeing the monitor.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from xpyrment_sql.queries.log import check_name, recording_sql
from xpyrment_sql.reporting.charts import traffic_png
from xpyrment_sql.reporting.records import MonitoringReport, SentStatement

if TYPE_CHECKING:
    from xpyrment_sql.checks.guardrails import GuardrailMetric
    from xpyrment_sql.checks.metrics import Metric
    from xpyrment_sql.monitor import LiveMonitor
    from xpyrment_sql.settings import CheckSettings, Design


def run_report(
    monitor: LiveMonitor,
    design: Design,
    settings: CheckSettings,
    *,
    source_name: str,
    guardrails: Sequence[GuardrailMetric] = (),
    segment_cols: Sequence[str] = (),
    metrics: Sequence[Metric] = (),
    opening_statements: Sequence[str] = (),
    on_statement: Callable[[str], None] | None = None,
    chart: bool = True,
) -> MonitoringReport:
    """Run the checks once and collect what the report shows.

    Args:
        monitor: The monitor to run (alerts go to its dispatcher, as with ``run_telemetry_checks``).
        design: The experiment's designed split (and control).
        settings: How to check it (bins, drop test, SRM levels); ``srm_alpha`` is also the level of
            the SRM per segment.
        source_name: How the report names the log (a short name, not a temporary path).
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
    with recording_sql(on_statement) as statements:
        telemetry = monitor.run(design, settings, guardrails=guardrails)
        segments = None
        if segment_cols:
            ratios, alpha = design.expected_ratios, settings.srm_alpha
            segments = monitor.check_srm_by(list(segment_cols), ratios, alpha=alpha)
        calculated = monitor.calculate_metrics(list(metrics)) if metrics else None
    png, note = None, ""
    if chart:
        png, note = traffic_png(
            telemetry.traffic,
            design.expected_ratios,
            window=settings.window,
            z_threshold=settings.z_threshold,
            drop_method=settings.drop_method,
            alpha=settings.sequential_alpha,
            concentration=settings.concentration,
            sequential_method=settings.sequential_method,
        )
    shown = tuple((field.name, getattr(settings, field.name)) for field in dataclasses.fields(settings))
    shown += (("segment_cols", ", ".join(segment_cols) or None),)
    return MonitoringReport(
        telemetry=telemetry,
        source_name=source_name,
        started_at=started_at,
        seconds=time.perf_counter() - clock,
        statements=tuple(SentStatement(check_name(sql), sql) for sql in (*opening_statements, *statements)),
        settings=shown,
        chart_png=png,
        chart_note=note,
        segments=segments,
        metrics=calculated,
        unit_col=monitor.unit_col,
        unit_rule=monitor.source.unit_rule_text,
    )
