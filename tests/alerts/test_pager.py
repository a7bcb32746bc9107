"""The pager's decisions (pure: no server, no clock), its history rows, and two runs end to end
through the dispatcher to the recording webhook on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pandas as pd
import pytest

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.pager import (
    DEFAULT_RENOTIFY,
    HISTORY_COLUMNS,
    ActiveAlert,
    AlertState,
    alert_key,
    decide,
    history_from_rows,
    history_rows,
    settle,
)
from xpyrment_sql.alerts.rules import Alert, AlertKind
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import GuardrailResult

T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")
HOUR = dt.timedelta(hours=1)
SRM = ActiveAlert(
    "experiment=checkout;check=SRM_SHUTOFF_TRIGGERED", "SRM_SHUTOFF_TRIGGERED", "SRM!", {"p_value": 1e-6}
)
DROP = ActiveAlert("experiment=checkout;check=TRAFFIC_DROP_ANOMALY", "TRAFFIC_DROP_ANOMALY", "Drop!", {})


def _sent(plan) -> list[tuple[str, str, str]]:
    return [(d.key, d.action, d.reason) for d in plan.decisions]


def test_the_same_condition_in_two_runs_sends_one_alert():
    first = decide({}, [SRM], T0)
    second = decide(first.history, [SRM], T0 + HOUR)

    assert _sent(first) == [(SRM.key, "trigger", "onset")]
    assert first.decisions[0].message == "SRM!"
    assert first.decisions[0].payload == {"p_value": 1e-6}
    assert second.decisions == ()
    assert second.history == first.history == {SRM.key: AlertState("SRM_SHUTOFF_TRIGGERED", T0, T0, True)}


def test_an_alert_still_active_is_sent_again_after_renotify_only():
    history = decide({}, [SRM], T0).history
    before = decide(history, [SRM], T0 + 5 * HOUR, renotify=6 * HOUR)
    due = decide(before.history, [SRM], T0 + 6 * HOUR, renotify=6 * HOUR)
    after = decide(due.history, [SRM], T0 + 7 * HOUR, renotify=6 * HOUR)

    assert before.decisions == ()
    assert _sent(due) == [(SRM.key, "trigger", "renotify")]
    assert due.history[SRM.key] == AlertState("SRM_SHUTOFF_TRIGGERED", T0, T0 + 6 * HOUR, True)
    assert after.decisions == ()


def test_the_default_renotify_is_a_day():
    history = decide({}, [SRM], T0).history
    assert dt.timedelta(hours=24) == DEFAULT_RENOTIFY
    assert decide(history, [SRM], T0 + 23 * HOUR).decisions == ()
    assert _sent(decide(history, [SRM], T0 + 24 * HOUR)) == [(SRM.key, "trigger", "renotify")]


def test_a_cleared_condition_sends_exactly_one_resolve():
    fired = decide({}, [SRM, DROP], T0)
    cleared = decide(fired.history, [DROP], T0 + HOUR)
    later = decide(cleared.history, [DROP], T0 + 2 * HOUR)

    assert _sent(cleared) == [(SRM.key, "resolve", "cleared")]
    [resolve] = cleared.decisions
    assert resolve.kind == "SRM_SHUTOFF_TRIGGERED"
    assert resolve.message == "SRM_SHUTOFF_TRIGGERED has cleared (active since 2026-01-05 10:00 UTC)."
    assert resolve.payload == {"key": SRM.key, "first_fired": T0, "resolved_at": T0 + HOUR}
    assert cleared.history[SRM.key] == AlertState("SRM_SHUTOFF_TRIGGERED", T0, T0 + HOUR, False)
    assert later.decisions == ()
    assert decide(later.history, [], T0 + 3 * HOUR).decisions[0].key == DROP.key  # the other one, once


def test_a_key_that_fires_again_after_resolving_triggers_a_new_episode():
    fired = decide({}, [SRM], T0)
    cleared = decide(fired.history, [], T0 + HOUR)
    again = decide(cleared.history, [SRM], T0 + 2 * HOUR)

    assert _sent(again) == [(SRM.key, "trigger", "onset")]
    assert again.history[SRM.key] == AlertState("SRM_SHUTOFF_TRIGGERED", T0 + 2 * HOUR, T0 + 2 * HOUR, True)


def test_triggers_come_in_the_given_order_then_resolves_by_key_and_duplicates_count_once():
    old = {
        "b": AlertState("NO_TRAFFIC", T0, T0, True),
        "a": AlertState("NO_TRAFFIC", T0, T0, True),
        "gone": AlertState("NO_TRAFFIC", T0, T0, False),
    }
    duplicate = dataclasses.replace(DROP, message="second copy")
    plan = decide(old, [DROP, SRM, duplicate], T0 + HOUR)

    assert _sent(plan) == [
        (DROP.key, "trigger", "onset"),
        (SRM.key, "trigger", "onset"),
        ("a", "resolve", "cleared"),
        ("b", "resolve", "cleared"),
    ]
    assert plan.decisions[0].message == "Drop!"
    assert plan.history["gone"] == old["gone"]


def test_the_plan_and_its_history_are_immutable():
    plan = decide({}, [SRM], T0)
    with pytest.raises(TypeError):
        plan.history["other"] = plan.history[SRM.key]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.decisions[0].action = "resolve"  # type: ignore[misc]


def test_a_naive_now_is_utc_and_the_previous_history_is_left_alone():
    history = {SRM.key: AlertState("SRM_SHUTOFF_TRIGGERED", T0, T0, True)}
    plan = decide(history, [], "2026-01-05 12:00")
    assert plan.history[SRM.key].last_sent == pd.Timestamp("2026-01-05 12:00", tz="UTC")
    assert history[SRM.key].active


@pytest.mark.parametrize("renotify", [dt.timedelta(0), -HOUR, 24, "24h", None, pd.NaT])
def test_a_bad_renotify_is_rejected_naming_it(renotify):
    with pytest.raises(ParameterError, match=r"^renotify must be a positive timedelta"):
        decide({}, [SRM], T0, renotify=renotify)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (({}, [SRM], "yesterday"), r"^now must be a time"),
        (({}, [SRM], None), r"^now must be a time"),
        (({"k": "state"}, [SRM], T0), r"^history must be a mapping of alert keys \(str\) to AlertState"),
        (([], [SRM], T0), r"^history must be a mapping"),
        (({}, [("k", "kind")], T0), r"^active must hold ActiveAlert records, got tuple"),
    ],
)
def test_bad_inputs_are_rejected_naming_the_parameter(args, message):
    with pytest.raises(ParameterError, match=message):
        decide(*args)


def test_an_undelivered_message_is_decided_again_by_the_next_run():
    fired = decide({}, [SRM, DROP], T0)
    kept = settle({}, fired, undelivered=[SRM.key])
    assert set(kept) == {DROP.key}
    assert _sent(decide(kept, [SRM, DROP], T0 + HOUR)) == [(SRM.key, "trigger", "onset")]

    cleared = decide(fired.history, [], T0 + HOUR)
    kept = settle(fired.history, cleared, undelivered=[DROP.key])
    assert kept[DROP.key].active
    assert _sent(decide(kept, [], T0 + 2 * HOUR)) == [(DROP.key, "resolve", "cleared")]


# --- the stable key --------------------------------------------------------------------------------


def test_alert_keys_name_experiment_check_and_for_guardrails_metric_and_variant():
    guardrail = {"experiment": "checkout", "metric_name": "latency", "treatment": "b", "relative_lift": 0.1}
    assert alert_key("GUARDRAIL_BREACH", guardrail) == (
        "experiment=checkout;check=GUARDRAIL_BREACH;metric=latency;variant=b"
    )
    assert alert_key("GUARDRAIL_BREACH", {**guardrail, "treatment": "c"}) != alert_key(
        "GUARDRAIL_BREACH", guardrail
    )
    assert alert_key(AlertKind.SRM_SHUTOFF_TRIGGERED, {"treatment": "b"}) == "check=SRM_SHUTOFF_TRIGGERED"
    assert alert_key("NO_TRAFFIC", {"experiment": "x"}, experiment="y") == "experiment=y;check=NO_TRAFFIC"
    assert alert_key("NO_TRAFFIC", None, experiment=7) == "experiment=7;check=NO_TRAFFIC"
    assert (
        alert_key("NO_TRAFFIC", {}, experiment="a;check=b%") == "experiment=a%3Bcheck=b%25;check=NO_TRAFFIC"
    )


def test_a_rule_alert_becomes_an_active_alert_keyed_by_its_record():
    breach = GuardrailResult(
        "latency", "treatment", "breach", True, 0.08, 0.05, 0.11, 0.02, "increase", "ci", False, "Latency up"
    )
    active = ActiveAlert.from_alert(
        Alert(AlertKind.GUARDRAIL_BREACH, "Guardrail breached!", breach), "checkout"
    )
    assert active == ActiveAlert(
        "experiment=checkout;check=GUARDRAIL_BREACH;metric=latency;variant=treatment",
        "GUARDRAIL_BREACH",
        "Guardrail breached!",
        breach,
    )


@pytest.mark.parametrize(("kind", "payload"), [(5, {}), ("NO_TRAFFIC", ["experiment"])])
def test_a_bad_key_input_is_rejected(kind, payload):
    with pytest.raises(ParameterError, match=r"^(kind|payload) must be"):
        alert_key(kind, payload)


# --- history rows ----------------------------------------------------------------------------------


def test_history_rows_round_trip_through_a_duckdb_table():
    history = decide(decide({}, [SRM, DROP], T0).history, [DROP], T0 + HOUR).history
    rows = history_rows(history)
    assert [row[0] for row in rows] == sorted(history)
    assert rows[0] == (SRM.key, "SRM_SHUTOFF_TRIGGERED", T0, T0 + HOUR, False)

    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE alert_history (key VARCHAR PRIMARY KEY, kind VARCHAR, "
            "first_fired TIMESTAMPTZ, last_sent TIMESTAMPTZ, active BOOLEAN)"
        )
        con.executemany("INSERT INTO alert_history VALUES (?, ?, ?, ?, ?)", [list(row) for row in rows])
        as_tuples = con.execute(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM alert_history").fetchall()
        as_frame = con.execute("SELECT * FROM alert_history").fetchdf()

    assert history_from_rows(as_tuples) == history
    assert history_from_rows(as_frame.to_dict(orient="records")) == history


def test_history_rows_read_iso_text_and_naive_times_as_utc():
    rows = [("k", "NO_TRAFFIC", "2026-01-05T10:00:00", "2026-01-05T11:00:00+01:00", 1)]
    assert history_from_rows(rows) == {"k": AlertState("NO_TRAFFIC", T0, T0, True)}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("k", "NO_TRAFFIC", T0, T0),
            r"^rows must hold the columns key, kind, first_fired, last_sent, active",
        ),
        (
            {"key": "k", "kind": "NO_TRAFFIC", "first_fired": T0, "active": True},
            r"^rows must hold the columns",
        ),
        (("k", "NO_TRAFFIC", "not a time", T0, True), r"^first_fired must be a time"),
    ],
)
def test_a_bad_history_row_is_rejected(row, message):
    with pytest.raises(ParameterError, match=message):
        history_from_rows([row])


# --- end to end ----------------------------------------------------------------------------------------


def test_runs_with_a_pager_send_one_alert_and_one_resolve(webhook):
    """Three hourly runs: the SRM fires, still holds, clears. PagerDuty and the custom webhook see
    one trigger and one resolve, with the same dedup_key."""
    dispatcher = WebhookAlertDispatcher(timeout=2.0, deadline=5.0, backoff=0.01)
    dispatcher.register_pagerduty("ROUTING-KEY", url=f"{webhook.url}/pagerduty")
    dispatcher.register_custom(f"{webhook.url}/custom")
    history: dict = {}
    kept = []
    for hour, active in enumerate([[SRM], [SRM], []]):
        plan = decide(history, active, T0 + hour * HOUR)
        outcomes = [
            dispatcher.dispatch(d.kind, d.message, d.payload, key=d.key, action=d.action)
            for d in plan.decisions
        ]
        kept += [record for outcome in outcomes for record in outcome.deliveries]
        undelivered = [d.key for d, o in zip(plan.decisions, outcomes, strict=True) if not o.succeeded]
        history = settle(history, plan, undelivered)

    events = [body for path, body in webhook.bodies if path == "/pagerduty"]
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", SRM.key),
        ("resolve", SRM.key),
    ]
    custom = [body for path, body in webhook.bodies if path == "/custom"]
    assert [body["message"] for body in custom] == ["SRM!", f"Resolved: {resolve_message()}"]
    assert [(r.kind, r.action, r.outcome) for r in kept] == [
        ("custom", "trigger", "delivered"),
        ("pagerduty", "trigger", "delivered"),
        ("custom", "resolve", "delivered"),
        ("pagerduty", "resolve", "delivered"),
    ]
    assert not history[SRM.key].active


def resolve_message() -> str:
    return "SRM_SHUTOFF_TRIGGERED has cleared (active since 2026-01-05 10:00 UTC)."
