"""Alerts sent like a pager, with the state file as the pager's memory.

Without a state file every run sends every active alert (the seed's behaviour). With one, a run
reads the alert history the previous run left, lets :func:`xpyrment_sql.alerts.pager.decide` choose
what to send (an alert at its onset, again only after ``renotify``, one "resolved" message when its
condition clears), sends it, and stores the new history and every delivery's record in the same
file, in one transaction. A message that reached no handler is decided again by the next run
(:func:`~xpyrment_sql.alerts.pager.settle`), so a failed page is retried rather than lost.

The delivery history (time, handler kind and host, outcome, attempts; never a URL or a key) is kept
in the file and the most recent :data:`HISTORY_SHOWN` records are returned for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.pager import (
    HISTORY_COLUMNS,
    ActiveAlert,
    AlertState,
    PagerDecision,
    decide,
    history_from_rows,
    history_rows,
    settle,
)
from xpyrment_sql.results import DeliveryRecord, DispatchOutcome
from xpyrment_sql.state.store import StateStore

HISTORY, DELIVERIES = "alert_history", "alert_deliveries"
"""State tables: each alert key's state, and every delivery ever made (append-only)."""

HISTORY_SHOWN = 50
"""Deliveries a report shows, most recent first."""

Send = Callable[[PagerDecision], Sequence[DispatchOutcome]]
"""Sends one decision to wherever its alert goes (one dispatcher, or a fleet experiment's routes)."""

_HISTORY_SCHEMA = "key VARCHAR, kind VARCHAR, first_fired TIMESTAMPTZ, last_sent TIMESTAMPTZ, active BOOLEAN"
_DELIVERY_SCHEMA = (
    "sent_at TIMESTAMPTZ, handler VARCHAR, kind VARCHAR, host VARCHAR, alert_type VARCHAR, "
    "action VARCHAR, key VARCHAR, outcome VARCHAR, attempts INTEGER, status INTEGER, error VARCHAR, "
    "reason VARCHAR"
)


def page(
    store: StateStore,
    alerts: Sequence[ActiveAlert],
    send: Send,
    renotify: pd.Timedelta,
    now: pd.Timestamp | None = None,
) -> tuple[dict[str, tuple[DispatchOutcome, ...]], tuple[DeliveryRecord, ...]]:
    """Send what the pager decides for ``alerts`` (the ones active now) and remember it.

    Args:
        store: The open state file.
        alerts: Every alert whose condition holds at this run.
        send: Delivers one decision; returns one outcome per dispatcher it went through.
        renotify: How long an alert that stays active waits before it is sent again.
        now: The run's wall-clock time (default: now).

    Returns:
        The outcomes by alert key, and the most recent deliveries kept in the file (this run's
        included), newest first.
    """
    at = pd.Timestamp.now(tz="UTC") if now is None else now
    previous = read_history(store)
    plan = decide(previous, alerts, at.to_pydatetime(), renotify.to_pytimedelta())
    sent: dict[str, tuple[DispatchOutcome, ...]] = {}
    undelivered = []
    for decision in plan.decisions:
        outcomes = tuple(send(decision))
        sent[decision.key] = sent.get(decision.key, ()) + outcomes
        if not any(outcome.succeeded for outcome in outcomes):
            undelivered.append(decision.key)
    kept = settle(previous, plan, undelivered)
    records = [record for outcomes in sent.values() for o in outcomes for record in o.deliveries]
    with store.transaction():
        _ensure_tables(store)
        store.run(f"DELETE FROM {store.table(HISTORY)}")
        for row in history_rows(kept):
            store.run(f"INSERT INTO {store.table(HISTORY)} VALUES (?, ?, ?, ?, ?)", _plain(row))
        for record in records:
            values = [getattr(record, name) for name in DeliveryRecord._field_names()]
            placeholders = ", ".join("?" for _ in values)
            store.run(f"INSERT INTO {store.table(DELIVERIES)} VALUES ({placeholders})", _plain(values))
    return sent, recent_deliveries(store)


def dispatch(dispatcher: WebhookAlertDispatcher, decision: PagerDecision) -> DispatchOutcome:
    """Send one decision through ``dispatcher``: a trigger or a resolve, under the alert's key."""
    return dispatcher.dispatch(
        decision.kind, decision.message, decision.payload, key=decision.key, action=decision.action
    )


def read_history(store: StateStore) -> Mapping[str, AlertState]:
    """The alert history the previous run left (empty before any run paged)."""
    if not store.has_table(HISTORY):
        return {}
    columns = ", ".join(HISTORY_COLUMNS)
    return history_from_rows(store.run(f"SELECT {columns} FROM {store.table(HISTORY)}"))


def recent_deliveries(store: StateStore, limit: int = HISTORY_SHOWN) -> tuple[DeliveryRecord, ...]:
    """The ``limit`` most recent deliveries kept in the file, newest first."""
    if not store.has_table(DELIVERIES):
        return ()
    names = DeliveryRecord._field_names()
    rows = store.run(
        f"SELECT {', '.join(names)} FROM {store.table(DELIVERIES)} ORDER BY sent_at DESC LIMIT ?", [limit]
    )
    return tuple(DeliveryRecord.from_dict(dict(zip(names, row, strict=True))) for row in rows)


def _ensure_tables(store: StateStore) -> None:
    """Create the history and delivery tables on the first run that pages."""
    store.run(f"CREATE TABLE IF NOT EXISTS {store.table(HISTORY)} ({_HISTORY_SCHEMA})")
    store.run(f"CREATE TABLE IF NOT EXISTS {store.table(DELIVERIES)} ({_DELIVERY_SCHEMA})")


def _plain(values: Sequence[object]) -> list[object]:
    """Values DuckDB binds as parameters: timestamps as aware datetimes."""
    return [value.to_pydatetime() if isinstance(value, pd.Timestamp) else value for value in values]
