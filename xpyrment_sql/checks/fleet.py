"""Every experiment of an exposure table checked in one pass: what ``LiveMonitor.check_all`` runs.

Experiments are grouped by what their query needs to know: the bin size and, for the seed's SPRT,
its design. Each group is one query (:func:`~xpyrment_sql.queries.fleet.fleet_counts`) returning
counts per experiment, bin and variant; experiments seen in the data but not in the config ride along
in the group of the ``[defaults]`` settings (a query of their own only when no configured experiment
shares those settings). Guardrails add one query for every experiment that has them
(:func:`~xpyrment_sql.queries.fleet.fleet_moments`). Each experiment's counts then go through the
same statistics as a single experiment's run
(:func:`~xpyrment_sql.checks.telemetry.telemetry_from_counts`); a configured experiment without rows
in its window raises ``NO_TRAFFIC``. Alerts name their experiment and go to its routes and to the
monitor's dispatcher.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.pager import ActiveAlert, PagerDecision, alert_key, key_experiment
from xpyrment_sql.alerts.rules import AlertKind, report_alerts
from xpyrment_sql.bins import BinSpec, as_utc
from xpyrment_sql.checks.guardrails import judge_guardrails
from xpyrment_sql.checks.incremental import (
    StateSettings,
    differ,
    fingerprint,
    incremental_counts,
    sprt_digest,
)
from xpyrment_sql.checks.metrics import Metric, check_metric_columns, metrics_from_moments
from xpyrment_sql.checks.paging import dispatch, page
from xpyrment_sql.checks.srm import SPRT_DELTA, sprt_query, sprt_shares_for_ratios
from xpyrment_sql.checks.telemetry import telemetry_from_counts
from xpyrment_sql.checks.traffic import MAX_MATRIX_CELLS, check_counts, chunks_for, matrix_rows
from xpyrment_sql.config import ConfigError, ExperimentConfig, FleetConfig
from xpyrment_sql.errors import ColumnError, DataError, ParameterError
from xpyrment_sql.queries.fleet import EXPERIMENT, Window, fleet_counts, fleet_moments, fleet_rows
from xpyrment_sql.queries.traffic import SprtSpec
from xpyrment_sql.results import (
    DeliveryRecord,
    DispatchOutcome,
    ExperimentStatus,
    FleetReport,
    StateRun,
    to_jsonable,
)
from xpyrment_sql.results.metrics import GuardrailReport
from xpyrment_sql.settings import CheckSettings, Design
from xpyrment_sql.source import Source
from xpyrment_sql.state import StateStore
from xpyrment_sql.state.store import StateScope

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
    state: StateSettings | None = None,
) -> FleetReport:
    """Check every experiment of ``config`` (and list those only in the data) at the instant ``until``.

    With ``state``, every plan's counts come from one state file plus the rows since its watermark
    (:mod:`xpyrment_sql.checks.incremental`, one namespace of the file per plan), exactly as a full
    run's; the file is tied to the config's experiments, bin sizes and windows (see
    :func:`fleet_fingerprint`).

    Raises:
        ColumnError: ``experiment_col`` is missing.
        ConfigError: an id cannot be a value of ``experiment_col``, or an experiment's ratios do not
            name its variants in the data.
        StateMismatchError: the state file was built for another config (and ``state.refresh`` is off).
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
    guarded = _guardrail_moments(source, column, variant_col, config, typed, until)
    moments = guarded or {}
    statuses: list[ExperimentStatus] = []
    queries = len(groups) + (guarded is not None)
    with contextlib.ExitStack() as stack:
        kept: tuple[StateStore, StateSettings] | None = None
        if state is not None:
            prints = fleet_fingerprint(source, variant_col, column, config, tz)
            con = source.backend.con if source.embedded else None
            store = StateStore.open(state.path, prints, con=con, refresh=state.refresh)
            kept = stack.enter_context(store), state
        counted = []
        for (freq, sprt), experiments in groups.items():
            if sprt is not None:
                source.require_window_functions("the SPRT's first crossings of a fleet")
            bins = CheckSettings(freq=freq).bins(tz)
            windows = {typed[e.id]: (e.start, e.end) for e in experiments}
            others = list(typed.values()) if (freq, sprt) == default_plan else None
            count = _PlanCounts(source, variant_col, column, bins, until, windows, others, sprt)
            runs: dict[object, StateRun] = {}
            if kept is None:
                counts = count.full()
            else:
                counts, runs = count.incremental(kept[0].scope(_scope_name(freq, sprt)), kept[1])
                queries += kept[1].verify
            counted.append((experiments, bins, others, counts, runs))
        after_latest = _after_latest(counts for *_, counts, _ in counted)
        for experiments, bins, others, counts, runs in counted:
            per_experiment = {key: part.drop(columns=EXPERIMENT) for key, part in counts.groupby(EXPERIMENT)}
            judging = _Judging(variant_col, bins, until, after_latest, config.path)
            for experiment in experiments:
                key = typed[experiment.id]
                rows = per_experiment.pop(key, None)
                statuses.append(judging.judge(experiment, rows, moments.get(key), runs.get(key)))
            if others is not None:
                for key, rows in per_experiment.items():
                    unlisted = config.for_unlisted(key)
                    if unlisted is None:
                        statuses.append(_unconfigured(key, rows))
                    else:
                        statuses.append(judging.judge(unlisted, rows, moments.get(key), runs.get(key)))
        routes = {str(experiment.id): experiment.routes for experiment in config.experiments}
        send = _Sender(routes, config.default_routes, dispatcher)
        deliveries: tuple[DeliveryRecord, ...] = ()
        if kept is None:
            statuses = [send.all_alerts(status) for status in statuses]
        else:
            statuses, deliveries = send.paged(statuses, kept[0], kept[1].renotify)
    statuses.sort(key=lambda status: (status.severity, str(status.experiment)))
    return FleetReport(tuple(statuses), config.path, queries, deliveries)


def fleet_fingerprint(
    source: Source, variant_col: str, experiment_col: str, config: FleetConfig, tz: str | None
) -> dict[str, str]:
    """What a fleet's state file must have been built from: the source's rows and columns, the zone,
    and each experiment's bin size and window (``experiment '<id>'``), which decide its counts.

    Other settings (levels, thresholds, routes, guardrails) can change freely; adding an experiment
    or moving its ``start``/``end`` needs a rebuild (``refresh=True``), and the mismatch names it.
    """
    prints = fingerprint(source, variant_col, config.default_settings.bins(tz))
    del prints["freq"], prints["sequential"]
    prints["experiment_col"] = f"{experiment_col} {source.schema[experiment_col]}"
    prints["unlisted experiments"] = f"freq={config.default_settings.freq}"
    for experiment in config.experiments:
        freq, sprt = _plan(experiment.settings, experiment.design)
        prints[f"experiment {experiment.id!r}"] = (
            f"freq={freq} start={experiment.start} end={experiment.end}"
            + ("" if sprt is None else f" sprt={sprt_digest(sprt)}")
        )
    return prints


def _scope_name(freq: str, sprt: SprtSpec | None) -> str:
    """The state file's namespace of one plan: its bin size, and the SPRT's design when it has one."""
    return freq if sprt is None else f"{freq}.sprt-{sprt_digest(sprt)}"


@dataclasses.dataclass(frozen=True)
class _PlanCounts:
    """The counts of one plan's experiments: a full query, or the state file plus the new rows."""

    source: Source
    variant_col: str
    column: str
    bins: BinSpec
    until: pd.Timestamp | None
    windows: Mapping[object, Window]
    others: list[object] | None
    sprt: SprtSpec | None

    def full(self) -> pd.DataFrame:
        """Every experiment's counts from one query over the whole table."""
        query = fleet_counts(
            self.source,
            self.variant_col,
            self.column,
            self.bins,
            self.until,
            self.windows,
            others=self.others,
            chunks=chunks_for(self.source, self.bins, self.until),
            sprt=self.sprt,
            max_rows=MAX_MATRIX_CELLS,
        )
        counts = self.source.execute(query, "the fleet's traffic matrix (check_all)")
        check_counts(counts, self.source, self.variant_col, self.bins)
        return counts

    def incremental(
        self, store: StateScope, state: StateSettings
    ) -> tuple[pd.DataFrame, dict[object, StateRun]]:
        """The counts from the state plus the rows since its watermark, and each experiment's record
        of the run (with ``state.verify``: compared with :meth:`full`, experiment by experiment)."""
        rows = fleet_rows(self.source, self.variant_col, self.column, self.until, self.windows, self.others)
        counts, run = incremental_counts(
            self.source,
            self.variant_col,
            self.bins,
            self.until,
            store,
            state.lateness,
            self.sprt,
            rows=rows,
            keys=(EXPERIMENT,),
        )
        keys = set(counts[EXPERIMENT])
        if not state.verify:
            return counts, dict.fromkeys(keys, run)
        full = self.full()
        keys |= set(full[EXPERIMENT])
        runs = {}
        for key in keys:
            mine, theirs = (frame[frame[EXPERIMENT] == key] for frame in (counts, full))
            found = (
                differ(mine, theirs, self.bins, self.variant_col, self.until)
                if len(mine) and len(theirs)
                else (f"the experiment has {len(mine)} count rows kept and {len(theirs)} in the log",)
            )
            runs[key] = dataclasses.replace(run, verified=not found, differences=found)
        return counts, runs


@dataclasses.dataclass(frozen=True)
class _Judging:
    """What every experiment of one plan is judged with."""

    variant_col: str
    bins: BinSpec
    until: pd.Timestamp | None
    after_latest: pd.Timestamp | None
    path: str

    def judge(
        self,
        experiment: ExperimentConfig,
        counts: pd.DataFrame | None,
        guardrail_inputs: GuardrailInputs | None,
        run: StateRun | None = None,
    ) -> ExperimentStatus:
        """One experiment's verdict from its counts: every check, or NO_TRAFFIC without a row.

        Only a running experiment is judged as one: before its ``start`` or after its ``end`` (at
        ``until``, or now) a missing row is expected, so it is ``not running`` and raises nothing; and
        an experiment that has ended is evaluated at its ``end``, so the empty bins after it are not a
        drop. Without ``until``, a running experiment is evaluated just after the fleet's latest
        exposure (``after_latest``), not its own: an experiment whose traffic stopped while the table
        kept filling shows the empty hours since, and its drop test sees them.
        """
        until = self.until
        instant = as_utc(until) if until is not None else pd.Timestamp.now(tz="UTC")
        ended = experiment.end is not None and experiment.end <= instant
        if counts is None or matrix_rows(counts).empty:
            if ended or (experiment.start is not None and experiment.start > instant):
                return ExperimentStatus(experiment.id, "not running")
            return ExperimentStatus(experiment.id, "no traffic", (AlertKind.NO_TRAFFIC.value,))
        judged_at = experiment.end if ended else until if until is not None else self.after_latest
        guarded, note = (
            (None, None) if guardrail_inputs is None else guardrail_inputs.judge(experiment, self.variant_col)
        )
        try:
            report = telemetry_from_counts(
                counts,
                self.variant_col,
                experiment.design,
                experiment.settings,
                self.bins,
                judged_at,
                guarded,
                run,
            )
        except ParameterError as exc:
            raise ConfigError(f"{self.path}: experiment {experiment.id!r}: key 'ratios': {exc}") from None
        status = "shutoff" if report.shutoff_triggered else "alert" if report.alerts_triggered else "healthy"
        units, last_seen = _seen(counts)
        notes = () if note is None else (note,)
        return ExperimentStatus(
            experiment.id, status, report.alerts_triggered, units, last_seen, report, notes=notes
        )


def _plan(settings: CheckSettings, design: Design | None) -> Plan:
    """The query an experiment needs: its bin size and, for the seed's SPRT, the SPRT's design."""
    if settings.sequential_method != "sprt" or design is None:
        return settings.freq, None
    shares = sprt_shares_for_ratios(design.expected_ratios)
    return settings.freq, sprt_query(shares, SPRT_DELTA, settings.sequential_alpha)


def _guardrail_moments(
    source: Source,
    column: str,
    variant_col: str,
    config: FleetConfig,
    typed: Mapping[str | int, object],
    until: pd.Timestamp | None,
) -> dict[object, GuardrailInputs] | None:
    """Every guarded experiment's metric moments from one query, by the experiment's typed id
    (``None``: no experiment has guardrails, no query ran).

    The query computes the union of all experiments' guarded metrics (each experiment then reads
    its own by position); it runs only when some experiment has guardrails, and covers unlisted
    experiments when ``[defaults]`` gives them a split and guardrails.

    Raises:
        ConfigError: a guardrail names a column that is missing or not numeric/boolean.
    """
    guarded = [experiment for experiment in config.experiments if experiment.guardrails]
    test_others = bool(config.default_guardrails) and config.default_design is not None
    if not guarded and not test_others:
        return None
    named = [(f"experiment {e.id!r}", e.guardrails) for e in guarded]
    if test_others:
        named.append(("[defaults]", config.default_guardrails))
    for where, guardrails in named:
        try:
            check_metric_columns(source, [g.metric for g in guardrails], variant_col, source.unit_col, None)
        except ColumnError as exc:
            raise ConfigError(f"{config.path}: {where}: key 'guardrails': {exc}") from None
    metrics = list(dict.fromkeys(g.metric for _, guardrails in named for g in guardrails))
    query = fleet_moments(
        source,
        variant_col,
        column,
        [metric.spec for metric in metrics],
        until,
        {typed[e.id]: (e.start, e.end) for e in guarded},
        others=list(typed.values()) if test_others else None,
    )
    frame = source.execute(query, "the fleet's guardrail moments (check_all)")
    positions = {metric: index for index, metric in enumerate(metrics)}
    return {
        key: GuardrailInputs(part.drop(columns=EXPERIMENT), positions, source.unit_col)
        for key, part in frame.groupby(EXPERIMENT)
    }


@dataclasses.dataclass(frozen=True)
class GuardrailInputs:
    """One experiment's rows of the fleet's moments query, where each metric sits in it, and the
    unit column the metrics were summed over."""

    moments: pd.DataFrame
    positions: Mapping[Metric, int]
    unit_col: str | None

    def judge(
        self, experiment: ExperimentConfig, variant_col: str
    ) -> tuple[GuardrailReport | None, str | None]:
        """The experiment's guardrails judged, or ``None`` and why they cannot be yet.

        Data that cannot be compared (an arm with fewer than two units with values, a NaN) is not
        an error for the whole fleet: the other checks and experiments still run, and the reason
        is noted on the experiment's status.
        """
        if not experiment.guardrails:
            return None, None
        metrics = [g.metric for g in experiment.guardrails]
        try:
            report = metrics_from_moments(
                self.moments,
                metrics,
                variant_col,
                experiment.design.control,
                self.unit_col,
                positions=[self.positions[metric] for metric in metrics],
            )
        except DataError as exc:
            return None, f"guardrails not judged: {exc}"
        return judge_guardrails(experiment.guardrails, report), None


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


def _after_latest(counts: Iterable[pd.DataFrame]) -> pd.Timestamp | None:
    """One microsecond after the latest exposure the fleet counted (aware UTC; ``None`` without any):
    the instant a run without ``until`` evaluates every running experiment at. Rows before it are
    every row counted, and the bin holding the latest exposure is unfinished, as a single
    experiment's run without ``until`` treats its own latest bin."""
    stamps = [matrix_rows(frame)["last_ts"].max() for frame in counts if not frame.empty]
    stamps = [stamp for stamp in stamps if not pd.isna(stamp)]
    return as_utc(pd.Timestamp(max(stamps))) + pd.Timedelta(microseconds=1) if stamps else None


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


class _Sender:
    """Where each experiment's alerts go: its routes (or the default ones) and the monitor's
    dispatcher; one routed dispatcher per experiment, built when it first sends."""

    def __init__(
        self,
        routes: Mapping[str, tuple[tuple[str, str], ...]],
        default_routes: tuple[tuple[str, str], ...],
        dispatcher: WebhookAlertDispatcher | None,
    ) -> None:
        self._routes = routes
        self._default_routes = default_routes
        self._dispatcher = dispatcher
        self._targets: dict[str | None, tuple[WebhookAlertDispatcher, ...]] = {}

    def targets(self, experiment: str | None) -> tuple[WebhookAlertDispatcher, ...]:
        """The dispatchers of ``experiment`` (its id as text)."""
        if experiment not in self._targets:
            routes = self._routes.get(experiment, self._default_routes) if experiment is not None else ()
            targets = [self._dispatcher] if self._dispatcher is not None else []
            if routes:
                routed = WebhookAlertDispatcher()
                for kind, url in routes:
                    register = {"slack": routed.register_slack, "email": routed.register_email}
                    register.get(kind, routed.register_custom)(url)
                targets.append(routed)
            self._targets[experiment] = tuple(targets)
        return self._targets[experiment]

    def all_alerts(self, status: ExperimentStatus) -> ExperimentStatus:
        """Send every alert of the experiment, named by it (a run without a state file)."""
        targets = self.targets(str(status.experiment))
        if not status.alerts or not targets:
            return status
        sent = [
            target.dispatch(kind, message, payload)
            for kind, message, payload in _alerts(status)
            for target in targets
        ]
        return dataclasses.replace(status, dispatches=tuple(sent))

    def paged(
        self, statuses: Sequence[ExperimentStatus], store: StateStore, renotify: pd.Timedelta
    ) -> tuple[list[ExperimentStatus], tuple[DeliveryRecord, ...]]:
        """Page every experiment's alerts with the state file's history: onsets, repeats after
        ``renotify`` and resolves, each to the routes of the experiment its key names."""
        active = [
            ActiveAlert(alert_key(kind, payload), kind, message, payload)
            for status in statuses
            for kind, message, payload in _alerts(status)
        ]

        def send(decision: PagerDecision) -> list[DispatchOutcome]:
            return [dispatch(target, decision) for target in self.targets(key_experiment(decision.key))]

        sent, deliveries = page(store, active, send, renotify)
        by_experiment: dict[str | None, tuple[DispatchOutcome, ...]] = {}
        for key, outcomes in sent.items():
            name = key_experiment(key)
            by_experiment[name] = by_experiment.get(name, ()) + outcomes
        paged = [
            dataclasses.replace(status, dispatches=by_experiment.get(str(status.experiment), ()))
            for status in statuses
        ]
        return paged, deliveries


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
