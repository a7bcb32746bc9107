"""Every health check at once, from one plan: what ``LiveMonitor.run_telemetry_checks`` runs.

At most two queries reach the backend: the guardrails' metric moments (only with guardrails) and the
traffic matrix, from which the drop test, the chi-square and the sequential SRM tests are all
computed. The same query also finds the seed's SPRT's first crossing (``sequential_method="sprt"``)
and counts the multiple-exposure events (unless ``max_multiple_exposure_share=None``), from the
first exposures it groups anyway, so the log's rows are read once. The alerts follow
:mod:`xpyrment_sql.alerts.rules` and go to the dispatcher, if any.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.pager import ActiveAlert
from xpyrment_sql.alerts.rules import report_alerts, shutoff_required, telemetry_alerts
from xpyrment_sql.bins import BinSpec
from xpyrment_sql.checks.drops import judge_traffic_drop
from xpyrment_sql.checks.exposure import exposure_from_events
from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.incremental import (
    StateSettings,
    check_state_run,
    checked_incrementally,
    open_state,
)
from xpyrment_sql.checks.paging import dispatch, page, recent_deliveries
from xpyrment_sql.checks.srm import (
    SPRT_DELTA,
    SprtCrossings,
    anytime,
    changepoint,
    live_srm_from_matrix,
    sprt_for_ratios,
    sprt_query,
    sprt_shares_for_ratios,
)
from xpyrment_sql.checks.traffic import fetch_counts, matrix_rows, traffic_matrix
from xpyrment_sql.results import AnytimeSRMResult, SequentialSRMResult, StateRun, TelemetryReport
from xpyrment_sql.results.metrics import GuardrailReport
from xpyrment_sql.settings import CheckSettings, Design
from xpyrment_sql.source import Source


def run_telemetry(
    source: Source,
    variant_col: str,
    design: Design,
    settings: CheckSettings,
    until: pd.Timestamp | None,
    *,
    tz: str | None = None,
    exact: bool = True,
    guardrails: Sequence[GuardrailMetric] = (),
    dispatcher: WebhookAlertDispatcher | None = None,
    state: StateSettings | None = None,
) -> TelemetryReport:
    """Run every check at the evaluation instant ``until``, raise and dispatch the alerts.

    ``tz`` is the zone whose local midnight starts day and week bins; ``exact=False`` estimates the
    active units per bin (see ``LiveMonitor``).

    ``shutoff_triggered`` in the record is this run's verdict; the monitor keeps it sticky. With
    ``state``, the traffic matrix and the multiple-exposure counts come from the state file plus the
    rows since its watermark (:mod:`xpyrment_sql.checks.incremental`), exactly as a full run's, and
    the alerts are paged (:mod:`xpyrment_sql.checks.paging`): sent at their onset, repeated after
    ``state.renotify``, resolved when they clear; without it every active alert is sent.
    """
    guarded = None
    if guardrails:
        guarded = check_guardrails(
            source, guardrails, variant_col, design.control, source.unit_col, until=until
        )
    share = settings.max_multiple_exposure_share
    run = None
    bins = settings.bins(tz)
    sprt_shares = (
        sprt_shares_for_ratios(design.expected_ratios) if settings.sequential_method == "sprt" else ()
    )
    spec = sprt_query(sprt_shares, SPRT_DELTA, settings.sequential_alpha)
    if state is None:
        counts = fetch_counts(source, variant_col, bins, until, exact, spec, exposure=share is not None)
        report = telemetry_from_counts(counts, variant_col, design, settings, bins, until, guarded)
        if dispatcher is None:
            return report
        alerts = report_alerts(report)
        dispatches = tuple(dispatcher.dispatch(a.kind.value, a.message, a.payload) for a in alerts)
        return dataclasses.replace(report, dispatches=dispatches)
    check_state_run(exact)
    with open_state(source, variant_col, bins, state, spec) as store:
        counts, run = checked_incrementally(source, variant_col, bins, until, state, store, spec, sprt_shares)
        report = telemetry_from_counts(counts, variant_col, design, settings, bins, until, guarded, run)
        if dispatcher is None:
            return dataclasses.replace(
                report, state=dataclasses.replace(run, deliveries=recent_deliveries(store))
            )
        active = [ActiveAlert.from_alert(alert) for alert in report_alerts(report)]
        sent, deliveries = page(store, active, lambda d: [dispatch(dispatcher, d)], state.renotify)
    dispatches = tuple(outcome for outcomes in sent.values() for outcome in outcomes)
    return dataclasses.replace(
        report, dispatches=dispatches, state=dataclasses.replace(run, deliveries=deliveries)
    )


def telemetry_from_counts(
    counts: pd.DataFrame,
    variant_col: str,
    design: Design,
    settings: CheckSettings,
    bins: BinSpec,
    until: pd.Timestamp | None,
    guarded: GuardrailReport | None = None,
    run: StateRun | None = None,
) -> TelemetryReport:
    """Every check's verdict from the traffic matrix query's rows (no query; nothing dispatched).

    ``counts`` are :func:`~xpyrment_sql.checks.traffic.fetch_counts`' columns for one experiment:
    the matrix rows (with the SPRT's crossings for ``sequential_method="sprt"``) and, unless
    ``max_multiple_exposure_share`` is None, the multiple-exposure events.
    """
    sprt = settings.sequential_method == "sprt"
    share = settings.max_multiple_exposure_share
    sprt_shares = sprt_shares_for_ratios(design.expected_ratios) if sprt else ()
    rows = matrix_rows(counts)
    matrix = traffic_matrix(rows, bins, variant_col, until)
    crossings = SprtCrossings.from_counts(rows, sprt_shares) if sprt_shares else None
    exposure = None if share is None else exposure_from_events(counts, share)
    anomaly = judge_traffic_drop(
        matrix, settings.drop_method, settings.window, settings.z_threshold, settings.drop_threshold
    )
    live = live_srm_from_matrix(
        matrix, design.expected_ratios, settings.srm_alpha, settings.min_units, settings.min_deviation
    )
    sequential: AnytimeSRMResult | SequentialSRMResult
    if sprt:
        sequential = sprt_for_ratios(matrix, crossings, design.expected_ratios, settings.sequential_alpha)
    else:
        test = changepoint if settings.sequential_method == "changepoint" else anytime
        sequential = test(
            matrix,
            design.expected_ratios,
            settings.sequential_alpha,
            settings.concentration,
            settings.min_units,
            settings.min_deviation,
        )
    alerts = telemetry_alerts(anomaly, live, sequential, exposure, guarded)
    return TelemetryReport(
        shutoff_triggered=shutoff_required(alerts),
        alerts_triggered=tuple(alert.kind.value for alert in alerts),
        traffic_anomaly=anomaly,
        cumulative_srm=live,
        sequential_srm=sequential,
        traffic=matrix,
        multiple_exposure=exposure,
        guardrails=guarded,
        state=run,
    )
