"""One run of the checks for ``check``, ``report`` and ``demo``: everything the report shows, in one record.

:func:`run_report` runs :meth:`LiveMonitor.run_telemetry_checks` once (and, when asked, the SRM per
segment and the metrics), records the SQL it sent, named by the check each statement served
(:mod:`xpyrment_sql.queries.log`), and draws the traffic chart from the matrix that run fetched, so the
report costs no query beyond the checks. The result is a
:class:`~xpyrment_sql.reporting.records.MonitoringReport`, which :mod:`xpyrment_sql.reporting` renders
without ever seeing the monitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from xpyrment_sql.queries.log import check_name, recording_sql
from xpyrment_sql.reporting.charts import traffic_png
from xpyrment_sql.reporting.records import MonitoringReport, SentStatement
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION

if TYPE_CHECKING:
    from xpyrment_sql.checks.guardrails import GuardrailMetric
    from xpyrment_sql.checks.metrics import Metric
    from xpyrment_sql.monitor import LiveMonitor
    from xpyrment_sql.settings import Ratios


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
    with recording_sql(on_statement) as statements:
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
        png, note = traffic_png(
            telemetry.traffic,
            expected_ratios,
            window=window,
            z_threshold=z_threshold,
            drop_method=drop_method,
            alpha=sequential_alpha,
            concentration=concentration,
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
        statements=tuple(SentStatement(check_name(sql), sql) for sql in (*opening_statements, *statements)),
        settings=settings,
        chart_png=png,
        chart_note=note,
        segments=segments,
        metrics=calculated,
        unit_col=monitor.unit_col,
        unit_rule=monitor.source.unit_rule_text,
    )
