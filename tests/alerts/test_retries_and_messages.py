"""Retries, the delivery history, PagerDuty events, Slack Block Kit and resolve messages, against the
recording webhook server on 127.0.0.1 (``webhook`` in tests/conftest.py): answers are queued per
request, so a test scripts "500, then 200" or "429 with Retry-After: 1, then 200"."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pandas as pd
import pytest

from xpyrment_sql.alerts.delivery import MAX_BACKOFF, backoff_delay, retry_after_seconds
from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.alerts.pager import alert_key
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import DeliveryRecord, DispatchOutcome

pytestmark = pytest.mark.usefixtures("no_proxy")

ROUTING_KEY = "R0UTINGKEY0123456789abcdefSECRET"
PAYLOAD = {
    "experiment": "checkout",
    "p_value": 0.00012,
    "observed_counts": [5120, 4410],
    "srm_detected": True,
}
FAST = {"timeout": 2.0, "deadline": 5.0, "backoff": 0.01}  # quick retries: the tests never sleep long


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert ROUTING_KEY not in text
        assert "SECRET" not in text


# --- retries -----------------------------------------------------------------------------------


def test_a_500_then_a_200_is_delivered_on_the_second_attempt(webhook, caplog):
    webhook.queue(500)
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_custom(f"{webhook.url}/hook/SECRET")
    with caplog.at_level(logging.INFO, logger="xpyrment_sql.alerts.dispatcher"):
        outcome = dispatcher.dispatch("SRM_SHUTOFF_TRIGGERED", "SRM", PAYLOAD)

    assert outcome.ok
    assert len(webhook.bodies) == 2
    assert webhook.bodies[0] == webhook.bodies[1]  # the same request, repeated
    [record] = outcome.deliveries
    assert (record.outcome, record.attempts, record.status, record.error) == ("delivered", 2, 200, None)
    assert f"alert handler custom:{webhook.host} delivered after 2 attempts" in caplog.text
    _no_secret(caplog.text, repr(outcome), json.dumps(outcome.to_dict()))


def test_a_429_with_retry_after_waits_as_asked_then_delivers(webhook):
    webhook.queue(429, ("Retry-After", "1"))
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_slack(f"{webhook.url}/services/SECRET")
    started = time.monotonic()
    outcome = dispatcher.dispatch("NO_TRAFFIC", "No traffic", PAYLOAD)

    assert outcome.ok
    assert len(webhook.arrivals) == 2
    assert webhook.arrivals[1] - webhook.arrivals[0] >= 0.95  # the backoff alone is 10 ms at most
    assert time.monotonic() - started < FAST["deadline"]
    assert outcome.deliveries[0].attempts == 2


def test_retries_stop_after_the_attempts_allowed(webhook):
    for _ in range(5):
        webhook.queue(503)
    dispatcher = WebhookAlertDispatcher(**FAST, attempts=3)
    dispatcher.register_email(f"{webhook.url}/mail")
    outcome = dispatcher.dispatch("NO_TRAFFIC", "No traffic", PAYLOAD)

    assert len(webhook.bodies) == 3
    [record] = outcome.deliveries
    assert (record.outcome, record.attempts, record.status) == ("failed", 3, 503)
    assert record.reason == "HTTP 503 Service Unavailable after 3 attempts"


@pytest.mark.parametrize("retry", [1, 2, 3, 8, 100])
def test_backoff_doubles_with_full_jitter_and_a_cap(retry):
    ceiling = min(MAX_BACKOFF, 0.5 * 2 ** (retry - 1))
    assert backoff_delay(retry, 0.5, 0.0) == 0.0
    assert backoff_delay(retry, 0.5, 0.5) == pytest.approx(ceiling / 2)
    assert backoff_delay(retry, 0.5, 0.999999) < ceiling


NOW = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("9" * 400, float("inf")),
        ("Mon, 05 Jan 2026 12:00:07 GMT", 7.0),
        ("Monday, 05-Jan-26 12:00:07 GMT", 7.0),  # the obsolete RFC 850 form
        ("Mon, 05 Jan 2026 11:59:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_delta_seconds_or_an_http_date(header, seconds):
    assert retry_after_seconds(header, NOW) == seconds


# --- the delivery history -------------------------------------------------------------------------


def test_every_delivery_is_recorded_without_url_or_routing_key(webhook):
    before = pd.Timestamp.now(tz="UTC")
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_slack(f"{webhook.url}/services/T0/B0/SECRET")
    dispatcher.register_pagerduty(ROUTING_KEY, url=f"{webhook.url}/v2/enqueue")
    dispatcher.register_callback(lambda *_args: None)
    outcome = dispatcher.dispatch("SRM_SHUTOFF_TRIGGERED", "SRM", PAYLOAD)

    key = "experiment=checkout;check=SRM_SHUTOFF_TRIGGERED"
    rows = [(r.handler, r.kind, r.host, r.action, r.key, r.outcome, r.attempts) for r in outcome.deliveries]
    assert rows == [
        (f"slack:{webhook.host}", "slack", webhook.host, "trigger", key, "delivered", 1),
        (f"pagerduty:{webhook.host}", "pagerduty", webhook.host, "trigger", key, "delivered", 1),
        ("callback:<lambda>", "callback", None, "trigger", key, "delivered", 1),
    ]
    assert {r.alert_type for r in outcome.deliveries} == {"SRM_SHUTOFF_TRIGGERED"}
    assert all(before <= r.sent_at <= pd.Timestamp.now(tz="UTC") for r in outcome.deliveries)
    assert all(str(r.sent_at.tz) == "UTC" for r in outcome.deliveries)
    _no_secret(repr(outcome), json.dumps(outcome.to_dict()), repr(vars(dispatcher)))
    assert webhook.url not in json.dumps(outcome.to_dict())


def test_a_record_is_rebuilt_from_its_dict_or_a_stored_row():
    record = DeliveryRecord(
        pd.Timestamp("2026-01-05 12:00:00.250", tz="UTC"), "pagerduty:events.pagerduty.com", "pagerduty",
        "events.pagerduty.com", "NO_TRAFFIC", "resolve", "experiment=7;check=NO_TRAFFIC", "failed",
        attempts=3, status=503, reason="HTTP 503 Service Unavailable after 3 attempts",
    )  # fmt: skip
    plain = record.to_dict()
    assert plain["sent_at"] == "2026-01-05T12:00:00.250000+00:00"
    assert DeliveryRecord.from_dict(json.loads(json.dumps(plain))) == record

    # a row read back through pandas: NaN for missing numbers and text, a naive timestamp
    frame = pd.DataFrame([plain, DeliveryRecord.from_dict({**plain, "status": None, "host": None}).to_dict()])
    frame["sent_at"] = pd.to_datetime(frame["sent_at"]).dt.tz_localize(None)
    first, second = (DeliveryRecord.from_dict(row) for row in frame.to_dict(orient="records"))
    assert first == record
    assert (second.status, second.host, second.error) == (None, None, None)


def test_a_row_without_a_column_is_rejected_naming_it():
    with pytest.raises(ParameterError, match=r"^row must hold every column .* missing: attempts"):
        DeliveryRecord.from_dict({name: None for name in DeliveryRecord._field_names() if name != "attempts"})


def test_the_outcome_keeps_its_shape_for_old_callers():
    outcome = DispatchOutcome("srm", ("slack:x",), ("email:y",))
    assert (outcome.ok, outcome.deliveries) == (False, ())
    assert outcome["failed"] == ("email:y",)


# --- PagerDuty ----------------------------------------------------------------------------------------


def test_pagerduty_trigger_then_resolve_share_the_dedup_key(webhook, caplog):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_pagerduty(ROUTING_KEY, url=f"{webhook.url}/v2/enqueue")
    payload = {**PAYLOAD, "shutoff": True}
    with caplog.at_level(logging.DEBUG, logger="xpyrment_sql.alerts.dispatcher"):
        fired = dispatcher.dispatch(
            "GUARDRAIL_BREACH", "Latency regressed", payload, link="https://ab.example/x"
        )
        key = fired.deliveries[0].key
        cleared = dispatcher.dispatch(
            "GUARDRAIL_BREACH", "Latency is back", payload, key=key, action="resolve"
        )

    assert fired.ok
    assert cleared.ok
    assert dispatcher.handler_names == (f"pagerduty:{webhook.host}",)
    (path, trigger), (_, resolve) = webhook.bodies
    assert path == "/v2/enqueue"
    assert trigger == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "experiment=checkout;check=GUARDRAIL_BREACH",
        "payload": {
            "summary": "GUARDRAIL_BREACH: Latency regressed",
            "source": "xpyrment_sql experiment checkout",
            "severity": "critical",  # the payload asks for a shutoff
            "component": "GUARDRAIL_BREACH",
            "custom_details": payload,
        },
        "client": "xpyrment_sql",
        "links": [{"href": "https://ab.example/x", "text": "Experiment report"}],
    }
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert cleared.deliveries[0].action == "resolve"
    _no_secret(caplog.text, repr(fired), repr(cleared), json.dumps(cleared.to_dict()), repr(vars(dispatcher)))


@pytest.mark.parametrize(
    ("alert_type", "payload", "severity"),
    [
        ("SRM_SHUTOFF_TRIGGERED", {}, "critical"),
        ("SEQUENTIAL_SRM_TRIGGERED", {}, "critical"),
        ("MULTIPLE_EXPOSURE", {}, "warning"),
        ("TRAFFIC_DROP_ANOMALY", {}, "error"),
        ("GUARDRAIL_BREACH", {"shutoff": False}, "error"),
        ("my-own-kind", {}, "error"),
    ],
)
def test_pagerduty_severity_follows_the_alert_kind(webhook, alert_type, payload, severity):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_pagerduty(ROUTING_KEY, url=f"{webhook.url}/v2/enqueue")
    dispatcher.dispatch(alert_type, "msg", payload)

    [(_, event)] = webhook.bodies
    assert event["payload"]["severity"] == severity
    assert event["payload"]["source"] == "xpyrment_sql"


def test_pagerduty_defaults_to_the_events_api_and_is_named_by_its_host():
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_pagerduty(ROUTING_KEY)
    assert dispatcher.handler_names == ("pagerduty:events.pagerduty.com",)
    assert ROUTING_KEY not in repr(vars(dispatcher))


def test_a_long_key_is_cut_to_pagerduty_s_limit_and_stays_distinct(webhook):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_pagerduty(ROUTING_KEY, url=f"{webhook.url}/v2/enqueue")
    dispatcher.dispatch("NO_TRAFFIC", "msg", {}, key="k" * 300)
    dispatcher.dispatch("NO_TRAFFIC", "msg", {}, key="k" * 299 + "x")

    first, second = (event["dedup_key"] for _, event in webhook.bodies)
    assert len(first) == len(second) == 255
    assert first != second


@pytest.mark.parametrize(
    ("routing_key", "problem"),
    [
        (None, "got NoneType"),
        ("", "empty"),
        ("has SECRET space", "space"),
        ("SECRET\n", "it is not"),
        ("SECRET-\u00e9", "it is not"),
    ],
)
def test_a_bad_routing_key_is_rejected_without_echoing_it(routing_key, problem):
    with pytest.raises(ParameterError, match=r"^routing_key must be") as info:
        WebhookAlertDispatcher().register_pagerduty(routing_key)
    assert problem in str(info.value)
    assert "SECRET" not in str(info.value)


# --- Slack Block Kit --------------------------------------------------------------------------------


def test_slack_lays_out_summary_numbers_and_link_with_the_seed_text_as_fallback(webhook):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_slack(f"{webhook.url}/services/T0/B0/SECRET")
    payload = {**PAYLOAD, "message": "chi-square p < 0.001", "table": [{"a": 1}], "note": None}
    dispatcher.dispatch(
        "SRM_SHUTOFF_TRIGGERED", "SRM on <checkout> & more", payload, link="https://ab.example/r"
    )

    [(_, body)] = webhook.bodies
    assert body["text"].startswith("🚨 *[xpyrment Alert]* SRM on <checkout> & more\n*Type*: `SRM_SHUTOFF")
    header, summary, numbers, actions, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🚨 Alert: SRM_SHUTOFF_TRIGGERED", "emoji": True},
    }
    assert summary == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "SRM on &lt;checkout&gt; &amp; more"},
    }
    assert numbers == {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*experiment*\ncheckout"},
            {"type": "mrkdwn", "text": "*p_value*\n0.00012"},
            {"type": "mrkdwn", "text": "*observed_counts*\n5,120, 4,410"},
            {"type": "mrkdwn", "text": "*srm_detected*\nyes"},
        ],
    }  # the message (already the summary), a table and a missing value are left out
    assert actions["elements"][0]["url"] == "https://ab.example/r"
    assert context["elements"][0]["text"] == "xpyrment_sql · experiment=checkout;check=SRM_SHUTOFF_TRIGGERED"


def test_slack_shows_ten_fields_at_most_and_no_link_block_without_a_link(webhook):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_slack(f"{webhook.url}/services/SECRET")
    dispatcher.dispatch("NO_TRAFFIC", "msg", {f"n{i}": i for i in range(15)})

    [(_, body)] = webhook.bodies
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "section", "context"]
    assert len(body["blocks"][2]["fields"]) == 10


# --- resolve messages ------------------------------------------------------------------------------


def test_a_resolve_is_clearly_marked_for_every_handler(webhook):
    calls = []
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_slack(f"{webhook.url}/slack")
    dispatcher.register_email(f"{webhook.url}/email")
    dispatcher.register_custom(f"{webhook.url}/custom")
    dispatcher.register_callback(lambda *args: calls.append(args))
    payload = {"key": "check=NO_TRAFFIC"}
    outcome = dispatcher.dispatch(
        "NO_TRAFFIC", "Traffic is back", payload, key="check=NO_TRAFFIC", action="resolve"
    )

    assert outcome.ok
    bodies = dict(webhook.bodies)
    pretty = json.dumps(payload, indent=2)
    assert (
        bodies["/slack"]["text"]
        == f"✅ *[xpyrment Resolved]* Traffic is back\n*Type*: `NO_TRAFFIC`\n*Payload*: {pretty}"
    )
    assert bodies["/slack"]["blocks"][0]["text"]["text"] == "✅ Resolved: NO_TRAFFIC"
    assert bodies["/email"] == {
        "subject": "[xpyrment Resolved] NO_TRAFFIC",
        "body": f"Traffic is back\n\nDetails:\n{pretty}",
    }
    assert bodies["/custom"] == {
        "alert_type": "NO_TRAFFIC",
        "message": "Resolved: Traffic is back",
        "details": payload,
        "action": "resolve",
        "key": "check=NO_TRAFFIC",
    }
    assert calls == [("NO_TRAFFIC", "Resolved: Traffic is back", payload)]
    assert {record.action for record in outcome.deliveries} == {"resolve"}


def test_a_trigger_keeps_the_seed_shapes_for_email_and_custom(webhook):
    dispatcher = WebhookAlertDispatcher(**FAST)
    dispatcher.register_email(f"{webhook.url}/email")
    dispatcher.register_custom(f"{webhook.url}/custom")
    dispatcher.dispatch("NO_TRAFFIC", "No traffic", PAYLOAD, key="k", link="https://ab.example/r")

    bodies = dict(webhook.bodies)
    assert set(bodies["/email"]) == {"subject", "body"}
    assert bodies["/custom"] == {"alert_type": "NO_TRAFFIC", "message": "No traffic", "details": PAYLOAD}


def test_the_default_key_is_the_alert_key():
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_callback(lambda *_args: None)
    payload = {"experiment": "search", "metric_name": "latency", "treatment": "b"}
    outcome = dispatcher.dispatch("GUARDRAIL_BREACH", "msg", payload)
    assert outcome.deliveries[0].key == alert_key("GUARDRAIL_BREACH", payload)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"action": "acknowledge"}, r"^action must be one of 'trigger', 'resolve', got 'acknowledge'"),
        ({"key": ""}, r"^key must be a non-empty str or None"),
        ({"key": 5}, r"^key must be a non-empty str or None"),
        ({"link": "javascript:alert(1)"}, r"^link must be an http:// or https:// URL"),
    ],
)
def test_bad_dispatch_options_are_rejected_naming_them(options, message):
    dispatcher = WebhookAlertDispatcher()
    with pytest.raises(ParameterError, match=message):
        dispatcher.dispatch("NO_TRAFFIC", "msg", {}, **options)
