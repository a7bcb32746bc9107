"""Decide what a run sends, like a pager: an alert once at its onset, again only after ``renotify``,
and one "resolved" message when its condition clears.

Pure: :func:`decide` reads the alert history the previous run left and the alerts active now, and
returns the messages to send and the history to keep; it does no I/O. The caller stores the
history (:func:`history_rows` and :func:`history_from_rows` turn it into plain rows for a table),
dispatches the decisions (``dispatcher.dispatch(d.kind, d.message, d.payload, key=d.key,
action=d.action)``) and, with :func:`settle`, keeps a message that reached no handler due, so the
next run sends it again.

Every alert has a stable key, :func:`alert_key`: its experiment, its check and, for a guardrail,
the metric and the treatment arm, so the same condition seen by two runs is the same alert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from xpyrment_sql.alerts.rules import Alert, AlertKind
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import Result, to_jsonable

DEFAULT_RENOTIFY = dt.timedelta(hours=24)
"""How long an alert that stays active waits before it is sent again."""

HISTORY_COLUMNS = ("key", "kind", "first_fired", "last_sent", "active")
"""The columns of a history row, in the order :func:`history_rows` gives them."""

_PER_VARIANT = frozenset({AlertKind.GUARDRAIL_BREACH.value})
"""Alert kinds raised once per metric and treatment arm rather than once per experiment."""


@dataclasses.dataclass(frozen=True)
class AlertState(Result):
    """What the history remembers of one alert key.

    Attributes:
        kind: The alert's kind (an :class:`~xpyrment_sql.alerts.rules.AlertKind` value).
        first_fired: When the current (or last) episode began (UTC).
        last_sent: When a message about it was last sent: a trigger, a repeat or the resolve (UTC).
        active: Whether its condition held at the last run.
    """

    kind: str
    first_fired: pd.Timestamp
    last_sent: pd.Timestamp
    active: bool


@dataclasses.dataclass(frozen=True)
class ActiveAlert(Result):
    """An alert whose condition holds now.

    Attributes:
        key: Its stable key (:func:`alert_key`).
        kind: Its kind, as dispatched.
        message: The sentence a person reads.
        payload: The record behind it (dispatched as is).
    """

    key: str
    kind: str
    message: str
    payload: Any = None

    @classmethod
    def from_alert(cls, alert: Alert, experiment: object = None) -> ActiveAlert:
        """The active alert for a rule's :class:`~xpyrment_sql.alerts.rules.Alert`, keyed by
        :func:`alert_key` (``experiment`` names it when its payload does not)."""
        key = alert_key(alert.kind, alert.payload, experiment)
        return cls(key, alert.kind.value, alert.message, alert.payload)


@dataclasses.dataclass(frozen=True)
class PagerDecision(Result):
    """One message to send.

    Attributes:
        key: The alert's key (PagerDuty's ``dedup_key``).
        kind: The alert's kind.
        action: ``"trigger"`` or ``"resolve"``.
        reason: ``"onset"`` (first run it is active), ``"renotify"`` (still active ``renotify`` after
            the last message) or ``"cleared"`` (active at the last run, not now).
        message: What to say: the alert's message, or for a resolve what cleared and since when.
        payload: The alert's record, or for a resolve its key and times.
    """

    key: str
    kind: str
    action: str
    reason: str
    message: str
    payload: Any = None


@dataclasses.dataclass(frozen=True)
class PagerPlan(Result):
    """What :func:`decide` found: the messages to send, in order, and the history to keep.

    Attributes:
        decisions: Triggers in the order the active alerts were given, then resolves by key.
        history: Every key's state after this run (read-only), resolved keys included.
    """

    decisions: tuple[PagerDecision, ...]
    history: Mapping[str, AlertState]


def decide(
    history: Mapping[str, AlertState],
    active: Iterable[ActiveAlert],
    now: dt.datetime | str,
    renotify: dt.timedelta = DEFAULT_RENOTIFY,
) -> PagerPlan:
    """Decide which alerts to send now, and the history after sending them.

    For each key: active now and not active at the last run (never seen, or resolved since) is a
    trigger ("onset", a new episode from ``now``); active at both with the last message at least
    ``renotify`` ago is a trigger ("renotify"); active at the last run and not now is one resolve
    ("cleared"); anything else sends nothing. An alert given twice under one key counts once (the
    first).

    Args:
        history: The previous run's history (empty on the first run).
        active: The alerts whose conditions hold now.
        now: The run's time (naive means UTC).
        renotify: How long an alert that stays active waits before it is sent again, > 0.

    Raises:
        ParameterError: If ``renotify`` is not a positive timedelta, ``now`` is not a time, or
            ``history`` or ``active`` hold something else than their records.

    Examples:
        >>> srm = ActiveAlert("experiment=checkout;check=SRM_SHUTOFF_TRIGGERED",
        ...                   "SRM_SHUTOFF_TRIGGERED", "Sample ratio mismatch")
        >>> first = decide({}, [srm], "2026-01-05 10:00")
        >>> [(d.action, d.reason) for d in first.decisions]
        [('trigger', 'onset')]
        >>> decide(first.history, [srm], "2026-01-05 11:00").decisions
        ()
        >>> [(d.action, d.reason) for d in decide(first.history, [], "2026-01-05 12:00").decisions]
        [('resolve', 'cleared')]
    """
    renotify = _check_renotify(renotify)
    at = _utc(now, "now")
    _check_history(history)
    current = _unique(active)
    states = dict(history)
    decisions = []
    for key, alert in current.items():
        state = history.get(key)
        if state is None or not state.active:
            reason = "onset"
            states[key] = AlertState(alert.kind, at, at, active=True)
        elif at - state.last_sent >= renotify:
            reason = "renotify"
            states[key] = dataclasses.replace(state, kind=alert.kind, last_sent=at)
        else:
            continue
        decisions.append(PagerDecision(key, alert.kind, "trigger", reason, alert.message, alert.payload))
    for key in sorted(history):
        state = history[key]
        if state.active and key not in current:
            states[key] = dataclasses.replace(state, last_sent=at, active=False)
            decisions.append(_resolve(key, state, at))
    return PagerPlan(tuple(decisions), types.MappingProxyType(states))


def settle(
    previous: Mapping[str, AlertState], plan: PagerPlan, undelivered: Iterable[str]
) -> Mapping[str, AlertState]:
    """The history to store once ``plan`` was dispatched: a key in ``undelivered`` (its message
    reached no handler) keeps its ``previous`` state, so the next run decides it again — the
    trigger, repeat or resolve is retried rather than lost.

    Examples:
        >>> srm = ActiveAlert("check=NO_TRAFFIC", "NO_TRAFFIC", "No traffic")
        >>> plan = decide({}, [srm], "2026-01-05 10:00")
        >>> dict(settle({}, plan, undelivered=["check=NO_TRAFFIC"]))
        {}
    """
    states = dict(plan.history)
    for key in set(undelivered):
        if key in previous:
            states[key] = previous[key]
        else:
            states.pop(key, None)
    return types.MappingProxyType(states)


def alert_key(
    kind: AlertKind | str, payload: Mapping[str, Any] | None = None, experiment: object = None
) -> str:
    """The stable key of an alert: ``experiment=<id>;check=<kind>`` plus, for a guardrail,
    ``;metric=<name>;variant=<treatment arm>``.

    The same condition gives the same key in every run, so the pager can tell a new alert from one
    already sent; it serves as PagerDuty's ``dedup_key``. ``experiment`` defaults to the payload's
    ``experiment`` entry (fleet alerts carry one) and is left out when neither gives it. A ``%`` or
    ``;`` inside a value is percent-encoded, so different alerts never share a key.

    Raises:
        ParameterError: If ``kind`` is not an AlertKind or a string, or ``payload`` not a mapping.

    Examples:
        >>> alert_key(AlertKind.SRM_SHUTOFF_TRIGGERED, {}, experiment="checkout")
        'experiment=checkout;check=SRM_SHUTOFF_TRIGGERED'
        >>> alert_key("GUARDRAIL_BREACH", {"experiment": 7, "metric_name": "latency", "treatment": "b"})
        'experiment=7;check=GUARDRAIL_BREACH;metric=latency;variant=b'
    """
    if not isinstance(kind, str):
        raise ParameterError(f"kind must be an AlertKind or a str, got {type(kind).__name__}")
    if payload is not None and not isinstance(payload, Mapping):
        raise ParameterError(f"payload must be a mapping or None, got {type(payload).__name__}")
    name = kind.value if isinstance(kind, AlertKind) else kind
    fields = payload if payload is not None else {}
    parts = [("experiment", experiment if experiment is not None else fields.get("experiment"))]
    parts.append(("check", name))
    if name in _PER_VARIANT:
        parts += [("metric", fields.get("metric_name")), ("variant", fields.get("treatment"))]
    return ";".join(f"{label}={_key_part(value)}" for label, value in parts if value is not None)


def key_experiment(key: str) -> str | None:
    """The experiment an :func:`alert_key` names, as text (``None`` when it names none).

    Examples:
        >>> key_experiment(alert_key("NO_TRAFFIC", {"experiment": "a;b"}))
        'a;b'
        >>> key_experiment("check=NO_TRAFFIC") is None
        True
    """
    first = key.split(";", 1)[0]
    if not first.startswith("experiment="):
        return None
    return first.removeprefix("experiment=").replace("%3B", ";").replace("%25", "%")


HistoryRow = tuple[str, str, pd.Timestamp, pd.Timestamp, bool]
"""One row of the history: ``(key, kind, first_fired, last_sent, active)``."""


def history_rows(history: Mapping[str, AlertState]) -> tuple[HistoryRow, ...]:
    """The history as plain rows, one per key in key order, columns as in ``HISTORY_COLUMNS``:
    ``(key, kind, first_fired, last_sent, active)`` with UTC timestamps, ready for a table.

    Examples:
        >>> plan = decide({}, [ActiveAlert("check=NO_TRAFFIC", "NO_TRAFFIC", "No traffic")], "2026-01-05")
        >>> history_rows(plan.history)
        (('check=NO_TRAFFIC', 'NO_TRAFFIC', Timestamp('2026-01-05 00:00:00+0000', tz='UTC'), \
Timestamp('2026-01-05 00:00:00+0000', tz='UTC'), True),)
        >>> history_from_rows(history_rows(plan.history)) == plan.history
        True
    """
    _check_history(history)
    return tuple(
        (key, state.kind, state.first_fired, state.last_sent, state.active)
        for key, state in sorted(history.items())
    )


def history_from_rows(rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Mapping[str, AlertState]:
    """Rebuild a history from rows as :func:`history_rows` gives them, or mappings with the
    ``HISTORY_COLUMNS`` names (a table read back); timestamps may be ISO text, naive means UTC.

    Raises:
        ParameterError: If a row lacks a column or holds something that is not a time where one
            is expected.
    """
    states: dict[str, AlertState] = {}
    for row in rows:
        if isinstance(row, Mapping):
            missing = [column for column in HISTORY_COLUMNS if column not in row]
            values = [row[column] for column in HISTORY_COLUMNS if column in row]
        else:
            missing = list(HISTORY_COLUMNS[len(row) :])
            values = list(row)
        if missing or len(values) != len(HISTORY_COLUMNS):
            raise ParameterError(
                f"rows must hold the columns {', '.join(HISTORY_COLUMNS)}, got a row of {len(values)} values"
            )
        key, kind, first_fired, last_sent, active = values
        states[str(key)] = AlertState(
            str(kind), _utc(first_fired, "first_fired"), _utc(last_sent, "last_sent"), bool(active)
        )
    return types.MappingProxyType(states)


def _resolve(key: str, state: AlertState, at: pd.Timestamp) -> PagerDecision:
    """The resolve message of a key whose condition no longer holds."""
    message = f"{state.kind} has cleared (active since {state.first_fired:%Y-%m-%d %H:%M} UTC)."
    payload = {"key": key, "first_fired": state.first_fired, "resolved_at": at}
    return PagerDecision(key, state.kind, "resolve", "cleared", message, payload)


def _unique(active: Iterable[ActiveAlert]) -> dict[str, ActiveAlert]:
    """The active alerts by key, first one kept (insertion order is the given order)."""
    current: dict[str, ActiveAlert] = {}
    for alert in active:
        if not isinstance(alert, ActiveAlert):
            raise ParameterError(f"active must hold ActiveAlert records, got {type(alert).__name__}")
        current.setdefault(alert.key, alert)
    return current


def _check_history(history: object) -> None:
    """Reject a history that is not a mapping of keys to :class:`AlertState`."""
    if not isinstance(history, Mapping):
        kind = type(history).__name__
        raise ParameterError(f"history must be a mapping of alert keys to AlertState, got {kind}")
    for key, state in history.items():
        if not isinstance(key, str) or not isinstance(state, AlertState):
            raise ParameterError(
                "history must be a mapping of alert keys (str) to AlertState, "
                f"got {type(key).__name__} -> {type(state).__name__}"
            )


def _check_renotify(renotify: object) -> pd.Timedelta:
    """``renotify`` as a Timedelta, if it is a positive timedelta."""
    if not isinstance(renotify, dt.timedelta) or pd.isna(renotify) or renotify <= dt.timedelta(0):
        raise ParameterError(
            f"renotify must be a positive timedelta (e.g. timedelta(hours=24)), got {renotify!r}"
        )
    return pd.Timedelta(renotify)


def _utc(value: object, name: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp (naive means UTC); ParameterError naming ``name`` if not a time."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if stamp is pd.NaT or not isinstance(stamp, pd.Timestamp):
        raise ParameterError(f"{name} must be a time (a datetime, Timestamp or ISO text), got {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _key_part(value: object) -> str:
    """One value of a key as text, with ``%`` and ``;`` percent-encoded."""
    text = str(to_jsonable(value))
    return text.replace("%", "%25").replace(";", "%3B")
