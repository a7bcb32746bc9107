"""What each handler receives: the seed's Slack, e-mail and custom webhook bodies, Slack's Block Kit
layout and PagerDuty's Events API v2 events, for an alert that fires or one that is resolved.

Pure formatting, no I/O: :mod:`xpyrment_sql.alerts.dispatcher` sends the bodies built here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from xpyrment_sql.alerts.rules import AlertKind

RESOLVED_PREFIX = "Resolved: "
"""Marks the message of a resolve for callbacks and custom webhooks."""

_SLACK_FIELDS = 10  # Block Kit allows 10 fields in a section
_SLACK_VALUE_LIMIT = 200  # characters of one payload value shown in a Slack field
_PAGERDUTY_SUMMARY_LIMIT = 1024  # the Events API truncates a longer summary
_DEDUP_KEY_LIMIT = 255  # the Events API's longest dedup_key

_SEVERITY = {
    AlertKind.SRM_SHUTOFF_TRIGGERED.value: "critical",
    AlertKind.SEQUENTIAL_SRM_TRIGGERED.value: "critical",
    AlertKind.MULTIPLE_EXPOSURE.value: "warning",
}  # every other kind is an "error"; a payload with shutoff=True is "critical"


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One alert as every handler formats it: ``payload`` already JSON-able."""

    alert_type: str
    message: str
    payload: Any
    key: str
    action: str
    link: str | None

    @property
    def resolved(self) -> bool:
        """True for a resolve: every handler marks it so nobody mistakes it for a new alert."""
        return self.action == "resolve"


def _pretty(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)


def _seed_text(alert: Outgoing) -> str:
    """The seed's Slack text, marked as a resolve when it is one."""
    mark = "✅ *[xpyrment Resolved]*" if alert.resolved else "🚨 *[xpyrment Alert]*"
    return f"{mark} {alert.message}\n*Type*: `{alert.alert_type}`\n*Payload*: {_pretty(alert.payload)}"


def _slack_body(alert: Outgoing, _secret: str) -> dict[str, Any]:
    """Block Kit: a header, the summary line, the payload's numbers as fields, a button to the
    link when given and the alert's key; ``text`` keeps the seed's message as the fallback
    notifications and old clients show."""
    title = f"{'✅ Resolved' if alert.resolved else '🚨 Alert'}: {alert.alert_type}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(alert.message)[:3000]}},
    ]
    fields = _slack_fields(alert.payload)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if alert.link is not None:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open report"}, "url": alert.link}
        blocks.append({"type": "actions", "elements": [button]})
    context = {"type": "mrkdwn", "text": f"xpyrment_sql · {_mrkdwn(alert.key)[:2000]}"}
    blocks.append({"type": "context", "elements": [context]})
    return {"text": _seed_text(alert), "blocks": blocks}


def _slack_fields(payload: Any) -> list[dict[str, str]]:
    """The payload's numbers (and other short values) as Block Kit fields, its message left out."""
    if not isinstance(payload, Mapping):
        return []
    fields = []
    for name, value in payload.items():
        shown = _field_value(value)
        if name != "message" and shown is not None:
            text = f"*{_mrkdwn(str(name))}*\n{_mrkdwn(shown)}"
            fields.append({"type": "mrkdwn", "text": text[:2000]})
    return fields[:_SLACK_FIELDS]


def _field_value(value: Any) -> str | None:
    """A JSON-able scalar, or a short list of them, as display text; ``None`` for anything else."""
    if isinstance(value, list):
        if not value or len(value) > _SLACK_FIELDS or isinstance(value[0], (list, dict)):
            return None
        items = [_field_value(item) for item in value]
        return None if None in items else ", ".join(str(item) for item in items)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and value:
        return value if len(value) <= _SLACK_VALUE_LIMIT else f"{value[:_SLACK_VALUE_LIMIT]}..."
    return None


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reads as markup (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _email_body(alert: Outgoing, _secret: str) -> dict[str, Any]:
    """The seed's ``{"subject", "body"}``; a resolve says so in its subject."""
    mark = "[xpyrment Resolved]" if alert.resolved else "[xpyrment Alert]"
    return {
        "subject": f"{mark} {alert.alert_type}",
        "body": f"{alert.message}\n\nDetails:\n{_pretty(alert.payload)}",
    }


def _custom_body(alert: Outgoing, _secret: str) -> dict[str, Any]:
    """The seed's ``{"alert_type", "message", "details"}``; a resolve also carries ``"action":
    "resolve"`` and the alert's ``"key"``, and its message starts with ``Resolved:``."""
    if not alert.resolved:
        return {"alert_type": alert.alert_type, "message": alert.message, "details": alert.payload}
    return {
        "alert_type": alert.alert_type,
        "message": f"{RESOLVED_PREFIX}{alert.message}",
        "details": alert.payload,
        "action": "resolve",
        "key": alert.key,
    }


def _pagerduty_body(alert: Outgoing, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: ``trigger`` with a summary, source, severity and the payload as
    custom details (and the link when given), or ``resolve``; both with the alert's key as
    ``dedup_key``, so PagerDuty groups repeats into one incident and the resolve closes it."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": alert.action,
        "dedup_key": _dedup_key(alert.key),
    }
    if alert.resolved:
        return event
    payload = alert.payload if isinstance(alert.payload, Mapping) else {}
    severity = "critical" if payload.get("shutoff") is True else _SEVERITY.get(alert.alert_type, "error")
    experiment = payload.get("experiment")
    event["payload"] = {
        "summary": f"{alert.alert_type}: {alert.message}"[:_PAGERDUTY_SUMMARY_LIMIT],
        "source": "xpyrment_sql" if experiment is None else f"xpyrment_sql experiment {experiment}",
        "severity": severity,
        "component": alert.alert_type,
        "custom_details": alert.payload,
    }
    event["client"] = "xpyrment_sql"
    if alert.link is not None:
        event["links"] = [{"href": alert.link, "text": "Experiment report"}]
    return event


def _dedup_key(key: str) -> str:
    """``key``, or for one longer than PagerDuty allows its start and a hash of all of it."""
    if len(key) <= _DEDUP_KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: _DEDUP_KEY_LIMIT - len(digest) - 1]}#{digest}"


BODY_BUILDERS: dict[str, Callable[[Outgoing, str], dict[str, Any]]] = {
    "slack": _slack_body,
    "email": _email_body,
    "custom": _custom_body,
    "pagerduty": _pagerduty_body,
}
"""Each HTTP handler kind's body from an alert and its secret (a PagerDuty routing key, else empty).
Insertion order is dispatch order: slack, then email, then custom, then pagerduty."""
