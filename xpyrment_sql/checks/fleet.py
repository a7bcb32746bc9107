"""Every experiment of an exposure table checked in one pass: what ``LiveMonitor.check_all`` runs.

Experiments are grouped by what their query needs to know: the bin size and, for the seed's SPRT,
its design. Each group is one query (:func:`~xpyrment_sql.queries.fleet.fleet_counts`) returning
counts per experiment, bin and variant; experiments seen in the data but not in the config ride along
in the group of the ``[defaults]`` settings (a query of their own only when no configured experiment
shares those settings). Each experiment's counts then go through the same statistics as a single
experiment's run (:func:`~xpyrment_sql.checks.telemetry.telemetry_from_counts`); a configured
experiment without rows in its window raises ``NO_TRAFFIC``. Alerts name their experiment and go to
its routes and to the monitor's dispatcher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.rules import AlertKind, report_alerts
from xpyrment_sql.bins import BinSpec, as_utc
from xpyrment_sql.checks.srm import SPRT_DELTA, sprt_query, sprt_shares_for_ratios
from xpyrment_sql.checks.telemetry import telemetry_from_counts
from xpyrment_sql.checks.traffic import MAX_MATRIX_CELLS, check_counts, chunks_for, matrix_rows
from xpyrment_sql.config import ConfigError, ExperimentConfig, FleetConfig
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.queries.fleet import EXPERIMENT, fleet_counts
from xpyrment_sql.queries.traffic import SprtSpec
from xpyrment_sql.results import DispatchOutcome, ExperimentStatus, FleetReport, to_jsonable
from xpyrment_sql.settings import CheckSettings, Design
from xpyrment_sql.source import Source

Plan = tuple[str, SprtSpec | None]
"""What one fleet query is built for: the bin size and the SPRT's design (None: no SPRT)."""


def run_fleet(
    source: Source,
    experiment_col: str,
    variant_col: str,
    config: FleetConfig,
    until: pd.Timestamp | None,
    *,
    tz: str | None = None,
    dispatcher: WebhookAlertDispatcher | None = None,
) -> FleetReport:
    """Check every experiment of ``config`` (and list those only in the data) at the instant ``until``.

    Raises:
        ColumnError: ``experiment_col`` is missing.
        ConfigError: an id cannot be a value of ``experiment_col``, or an experiment's ratios do not
            name its variants in the data.
    """
    column = source.require_column(experiment_col, "experiment_col")
    typed = {
        experiment.id: _typed_id(experiment.id, source, column, config.path)
        for experiment in config.experiments
    }
    groups: dict[Plan, list[ExperimentConfig]] = {}
    for experiment in config.experiments:
        groups.setdefault(_plan(experiment.settings, experiment.design), []).append(experiment)
    default_plan = _plan(config.default_settings, config.default_design)
    groups.setdefault(default_plan, [])
    statuses: list[ExperimentStatus] = []
    for (freq, sprt), experiments in groups.items():
        if sprt is not None:
            source.require_window_functions("the SPRT's first crossings of a fleet")
        bins = CheckSettings(freq=freq).bins(tz)
        windows = {typed[e.id]: (e.start, e.end) for e in experiments}
        others = list(typed.values()) if (freq, sprt) == default_plan else None
        query = fleet_counts(
            source,
            variant_col,
            column,
            bins,
            until,
            windows,
            others=others,
            chunks=chunks_for(source, bins, until),
            sprt=sprt,
            max_rows=MAX_MATRIX_CELLS,
        )
        counts = source.execute(query, "the fleet's traffic matrix (check_all)")
        check_counts(counts, source, variant_col, bins)
        per_experiment = {key: part.drop(columns=EXPERIMENT) for key, part in counts.groupby(EXPERIMENT)}
        for experiment in experiments:
            rows = per_experiment.pop(typed[experiment.id], None)
            statuses.append(_judge(experiment, rows, variant_col, bins, until, config.path))
        if others is not None:
            for key, rows in per_experiment.items():
                unlisted = config.for_unlisted(key)
                if unlisted is None:
                    statuses.append(_unconfigured(key, rows))
                else:
                    statuses.append(_judge(unlisted, rows, variant_col, bins, until, config.path))
    routes = {experiment.id: experiment.routes for experiment in config.experiments}
    statuses = [
        _dispatched(status, routes.get(status.experiment, config.default_routes), dispatcher)
        for status in statuses
    ]
    statuses.sort(key=lambda status: (status.severity, str(status.experiment)))
    return FleetReport(tuple(statuses), config.path, len(groups))


def _plan(settings: CheckSettings, design: Design | None) -> Plan:
    """The query an experiment needs: its bin size and, for the seed's SPRT, the SPRT's design."""
    if settings.sequential_method != "sprt" or design is None:
        return settings.freq, None
    shares = sprt_shares_for_ratios(design.expected_ratios)
    return settings.freq, sprt_query(shares, SPRT_DELTA, settings.sequential_alpha)


def _typed_id(experiment: str | int, source: Source, column: str, path: str) -> object:
    """An id from the config as a value of the experiment column (a string or an integer column)."""
    kind = source.schema[column]
    if kind.is_string():
        return str(experiment)
    if kind.is_integer():
        try:
            return int(experiment)
        except ValueError:
            raise ConfigError(
                f"{path}: experiment {experiment!r}: key 'id' must be an integer, as the experiment "
                f"column {column!r} holds integers"
            ) from None
    raise ConfigError(
        f"the experiment column {column!r} holds {kind}; expected strings or integers (experiment ids)"
    )


def _judge(
    experiment: ExperimentConfig,
    counts: pd.DataFrame | None,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    path: str,
) -> ExperimentStatus:
    """One experiment's verdict from its counts: every check, or NO_TRAFFIC without a row.

    Only a running experiment is judged as one: before its ``start`` or after its ``end`` (at
    ``until``, or now) a missing row is expected, so it is ``not running`` and raises nothing; and an
    experiment that has ended is evaluated at its ``end``, so the empty bins after it are not a drop.
    """
    instant = as_utc(until) if until is not None else pd.Timestamp.now(tz="UTC")
    ended = experiment.end is not None and experiment.end <= instant
    if counts is None or matrix_rows(counts).empty:
        if ended or (experiment.start is not None and experiment.start > instant):
            return ExperimentStatus(experiment.id, "not running")
        return ExperimentStatus(experiment.id, "no traffic", (AlertKind.NO_TRAFFIC.value,))
    judged_at = experiment.end if ended else until
    try:
        report = telemetry_from_counts(
            counts, variant_col, experiment.design, experiment.settings, bins, judged_at
        )
    except ParameterError as exc:
        raise ConfigError(f"{path}: experiment {experiment.id!r}: key 'ratios': {exc}") from None
    status = "shutoff" if report.shutoff_triggered else "alert" if report.alerts_triggered else "healthy"
    units, last_seen = _seen(counts)
    return ExperimentStatus(experiment.id, status, report.alerts_triggered, units, last_seen, report)


def _unconfigured(experiment: object, counts: pd.DataFrame) -> ExperimentStatus:
    """An experiment seen only in the data: listed with its units and last exposure, not tested."""
    units, last_seen = _seen(counts)
    return ExperimentStatus(_plain(experiment), "unconfigured", (), units, last_seen)


def _seen(counts: pd.DataFrame) -> tuple[int, pd.Timestamp | None]:
    """Distinct units (the ``units`` events) and the latest exposure (the cells' ``last_ts``)."""
    units = int(counts.loc[counts["part"] == "units", "units"].sum())
    latest = matrix_rows(counts)["last_ts"].max()
    return units, None if pd.isna(latest) else as_utc(pd.Timestamp(latest))


def _plain(value: object) -> str | int:
    """An experiment id from the data as a plain ``str`` or ``int`` (numpy integers included)."""
    plain = to_jsonable(value)
    return plain if isinstance(plain, (str, int)) else str(plain)


def _dispatched(
    status: ExperimentStatus,
    routes: Iterable[tuple[str, str]],
    dispatcher: WebhookAlertDispatcher | None,
) -> ExperimentStatus:
    """Send the experiment's alerts, named by it, to its routes and to ``dispatcher``."""
    routes = tuple(routes)
    if not status.alerts or (dispatcher is None and not routes):
        return status
    targets = [dispatcher] if dispatcher is not None else []
    if routes:
        routed = WebhookAlertDispatcher()
        for kind, url in routes:
            register = {"slack": routed.register_slack, "email": routed.register_email}
            register.get(kind, routed.register_custom)(url)
        targets.append(routed)
    sent: list[DispatchOutcome] = []
    for kind, message, payload in _alerts(status):
        for target in targets:
            sent.append(target.dispatch(kind, message, payload))
    return dataclasses.replace(status, dispatches=tuple(sent))


def _alerts(status: ExperimentStatus) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The experiment's alerts as ``(kind, message, payload)``, each naming the experiment."""
    name = f"[experiment {status.experiment}]"
    if status.report is None:
        message = f"{name} No traffic: no exposure since the experiment's start."
        return [(AlertKind.NO_TRAFFIC.value, message, {"experiment": status.experiment})]
    return [
        (
            alert.kind.value,
            f"{name} {alert.message}",
            {"experiment": status.experiment, **to_jsonable(alert.payload)},
        )
        for alert in report_alerts(status.report)
    ]
