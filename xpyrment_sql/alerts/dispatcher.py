"""Push experiment alerts to Slack, e-mail services, custom webhooks, PagerDuty and Python callbacks.

One failing handler never stops the others: every failure is logged (one line: handler kind, host,
reason) and reported in the returned ``DispatchOutcome``, with one ``DeliveryRecord`` per handler
for the delivery history. A live monitor is only as alive as its slowest webhook, so each HTTP
delivery ends within a total deadline whatever the server does (stall, drip one byte at a time,
stream forever, redirect); at most a few KiB of any response are read. Failures worth retrying (no
connection, no answer in time, a 5xx, a 429) are retried with backoff and jitter, honouring
``Retry-After``, until the deadline (:mod:`xpyrment_sql.alerts.delivery`). Webhook URLs and
PagerDuty routing keys are secrets (a Slack URL embeds its token), so handlers are only ever named
by kind and host, and neither reaches a log line, a result or an error message.

An alert is either triggered or resolved (``action=``); it carries a stable key
(:func:`xpyrment_sql.alerts.pager.alert_key`), PagerDuty's ``dedup_key``. Slack messages are laid
out with Block Kit and keep the seed's ``text`` as their fallback; e-mail and custom webhooks get
the seed's shapes, a resolve being marked in them.
"""

from __future__ import annotations

import dataclasses
import functools
import http
import json
import logging
import math
import numbers
import random
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import pandas as pd

from xpyrment_sql.alerts.messages import BODY_BUILDERS, RESOLVED_PREFIX, Outgoing
from xpyrment_sql.alerts.pager import alert_key
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import DeliveryRecord, DispatchOutcome, to_jsonable

logger = logging.getLogger("xpyrment_sql.alerts.dispatcher")

AlertCallback = Callable[[str, str, Mapping[str, Any]], None]

DEFAULT_TIMEOUT = 10.0
"""Seconds one attempt at a webhook delivery may take: connect, send, answer and body together."""

DEFAULT_ATTEMPTS = 4
"""Attempts at most per webhook and alert (the first and three retries)."""

DEFAULT_BACKOFF = 0.5
"""Seconds of the first backoff before jitter; each later one doubles."""

DEADLINE_TIMEOUTS = 3
"""Without ``deadline=``, all attempts of one delivery may take this many times ``timeout``."""

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
"""PagerDuty's Events API v2 endpoint."""

ACTIONS = ("trigger", "resolve")
"""What a dispatch says about an alert: it fires, or its condition has cleared."""

_REASON_LIMIT = 200  # characters of an error text logged at most (a bad status line can be huge)
_REDACTED = "<redacted>"
_TOKEN_LENGTH = 6


def _url_problem(url: object) -> str | None:
    """Say what stops urllib from POSTing to ``url`` without quoting any of it, or ``None``.

    Needed: http(s), a host, a valid port, printable ASCII without spaces (urllib cannot send
    anything else) and no credentials (urllib would resolve ``user:password@host`` as a host).
    """
    if not isinstance(url, str):
        return f"got {type(url).__name__}, not str"
    if not (url.isascii() and url.isprintable()) or " " in url:
        return "it holds a space, a control character or non-ASCII text (percent-encode them)"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return "its host or port cannot be parsed"
    if parts.scheme.lower() not in ("http", "https"):
        return "its scheme is not http or https"
    if "@" in parts.netloc:
        return "it holds user:password@ credentials"
    if not parts.hostname:
        return "it has no host"
    return None


def _host_label(parts: SplitResult) -> str:
    """Return ``host[:port]`` — the only part of a webhook URL that may be shown."""
    host = f"[{parts.hostname}]" if ":" in str(parts.hostname) else str(parts.hostname)
    return f"{host}:{parts.port}" if parts.port is not None else host


def _scrub(text: str, url: str, secret: str = "") -> str:
    """Remove the URL and everything after its host from ``text``, plus any part of it long
    enough to be a token (short parts such as ``500`` or ``v1`` would only mangle the text),
    and ``secret`` (a routing key), percent-encoded or not; then escape control characters (the
    text may come from the server, which must not forge log lines) and cut the result to a
    log-friendly length."""
    parts = urlsplit(url)
    tail = url.split(parts.netloc, 1)[1]
    query_parts = parts.query.replace("=", "&").split("&")
    tokens = (parts.path, parts.query, parts.fragment, *parts.path.split("/"), *query_parts)
    pieces = {url, tail, secret, *(p for p in tokens if len(p) >= _TOKEN_LENGTH)} - {"", "/"}
    pieces |= {unquote(piece) for piece in pieces}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, _REDACTED).replace(repr(piece)[1:-1], _REDACTED)
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text.strip())
    return text if len(text) <= _REASON_LIMIT else f"{text[:_REASON_LIMIT]}..."


@dataclasses.dataclass(frozen=True)
class _Webhook:
    """One registered HTTP endpoint: ``name`` and ``host`` are safe to show, ``url`` and ``secret``
    (a PagerDuty routing key) are not."""

    kind: str
    name: str
    host: str
    url: str = dataclasses.field(repr=False)
    secret: str = dataclasses.field(default="", repr=False)

    @classmethod
    def parse(cls, kind: str, url: str, secret: str = "") -> _Webhook:
        """Validate ``url``; the error never echoes it because webhook URLs carry secrets."""
        problem = _url_problem(url)
        if problem is not None:
            raise ParameterError(
                f"{kind} url must be an http:// or https:// URL with a host, but {problem} "
                "(the value is not shown because webhook URLs carry secrets)"
            )
        host = _host_label(urlsplit(url))
        return cls(kind, f"{kind}:{host}", host, url, secret)


def _status_problem(status: int) -> str | None:
    """Why an HTTP status is a failed delivery (``None`` for 2xx), with the standard reason phrase:
    the server's own phrase is never shown, since a proxy may echo the secret URL in it."""
    if 200 <= status < 300:
        return None
    try:
        label = f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        label = f"HTTP {status}"
    return f"redirect not followed ({label})" if 300 <= status < 400 else label


def _callback_name(callback: AlertCallback) -> str:
    return f"callback:{getattr(callback, '__name__', None) or repr(type(callback))}"


def _seconds(value: object, name: str, *, zero: bool = False) -> float:
    """``value`` as seconds if it is a finite real number > 0 (>= 0 with ``zero``)."""
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        seconds = float(value)
        if (seconds >= 0 if zero else seconds > 0) and seconds < math.inf:
            return seconds
    bound = ">= 0" if zero else "> 0"
    raise ParameterError(f"{name} must be a finite number of seconds {bound}, got {value!r}")


def _count(value: object, name: str) -> int:
    """``value`` as an int if it is an integer >= 1."""
    if not isinstance(value, bool) and isinstance(value, numbers.Integral) and int(value) >= 1:
        return int(value)
    raise ParameterError(f"{name} must be an int >= 1 (1: no retry), got {value!r}")


class WebhookAlertDispatcher:
    """Send each alert to every registered webhook and callback, isolating failures.

    HTTP handlers run first (Slack, then e-mail, then custom webhooks, then PagerDuty; registration
    order within a kind), then callbacks in registration order. A 2xx answer is a delivery (its body
    is read up to 4 KiB, never more); a 5xx, a 429, a broken connection or no answer within
    ``timeout`` is retried after an exponential backoff with jitter (or the ``Retry-After`` a 429 or
    503 asks for) while ``attempts`` and ``deadline`` allow; another 4xx, a redirect (never
    followed) or a garbled answer fails at once. Each failure is logged as ``kind:host`` and a
    reason. With ``n`` webhooks a dispatch takes at most about ``n * deadline`` seconds, plus what
    the callbacks take.

    Args:
        timeout: Seconds one attempt may take — connecting, sending, waiting for the answer and
            reading its body — whatever the server does; a finite number > 0.
        deadline: Seconds all attempts at one webhook, and the waits between them, may take
            together; a finite number > 0, by default ``3 * timeout``. An attempt never runs past
            it, and a ``Retry-After`` reaching past it ends the retries (the log says so).
        attempts: Attempts at most per webhook and alert, an int >= 1 (1: no retry).
        backoff: Seconds of the first backoff before jitter, a finite number >= 0; each later one
            doubles, and the wait is drawn uniformly below it ("full jitter").
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self._timeout = _seconds(timeout, "timeout")
        self._deadline = (
            DEADLINE_TIMEOUTS * self._timeout if deadline is None else _seconds(deadline, "deadline")
        )
        self._attempts = _count(attempts, "attempts")
        self._backoff = _seconds(backoff, "backoff", zero=True)
        self._jitter = random.Random()
        self._webhooks: dict[str, list[_Webhook]] = {kind: [] for kind in BODY_BUILDERS}
        self._callbacks: list[AlertCallback] = []

    @property
    def timeout(self) -> float:
        """Seconds one attempt at a webhook delivery may take."""
        return self._timeout

    @property
    def deadline(self) -> float:
        """Seconds all attempts at one webhook delivery may take together."""
        return self._deadline

    @property
    def attempts(self) -> int:
        """Attempts at most per webhook and alert."""
        return self._attempts

    @property
    def backoff(self) -> float:
        """Seconds of the first backoff before jitter."""
        return self._backoff

    def register_slack(self, url: str) -> None:
        """Post alerts to a Slack incoming-webhook URL: Block Kit blocks with a ``text`` fallback."""
        self._webhooks["slack"].append(_Webhook.parse("slack", url))

    def register_email(self, url: str) -> None:
        """Post alerts as ``{"subject", "body"}`` JSON to an e-mail notification service."""
        self._webhooks["email"].append(_Webhook.parse("email", url))

    def register_custom(self, url: str) -> None:
        """Post alerts as ``{"alert_type", "message", "details"}`` JSON to any endpoint."""
        self._webhooks["custom"].append(_Webhook.parse("custom", url))

    def register_pagerduty(self, routing_key: str, *, url: str = PAGERDUTY_URL) -> None:
        """Send alerts to PagerDuty as Events API v2 ``trigger`` and ``resolve`` events.

        Args:
            routing_key: The integration key of a PagerDuty service (a secret: never shown).
            url: The Events API endpoint (another one for a proxy or a test server).

        Raises:
            ParameterError: If ``routing_key`` is not printable ASCII without spaces, or ``url``
                is not an http(s) URL with a host; neither value is echoed.
        """
        if not (isinstance(routing_key, str) and routing_key.isascii() and routing_key.isprintable()):
            problem = f"got {type(routing_key).__name__}" if not isinstance(routing_key, str) else "it is not"
            raise ParameterError(
                f"routing_key must be printable ASCII text, but {problem} "
                "(the value is not shown because routing keys are secrets)"
            )
        if not routing_key.strip() or " " in routing_key:
            raise ParameterError(
                "routing_key must be a PagerDuty integration key without spaces, but it is empty or holds "
                "a space (the value is not shown because routing keys are secrets)"
            )
        self._webhooks["pagerduty"].append(_Webhook.parse("pagerduty", url, routing_key))

    def register_callback(self, callback: AlertCallback) -> None:
        """Call ``callback(alert_type, message, payload)`` with the original payload object; for a
        resolve the message starts with ``Resolved:``."""
        if not callable(callback):
            raise ParameterError(
                f"callback must be callable as (alert_type, message, payload), got {type(callback).__name__}"
            )
        self._callbacks.append(callback)

    @property
    def handler_names(self) -> tuple[str, ...]:
        """Names of all handlers in dispatch order, as they appear in a ``DispatchOutcome``."""
        webhooks = [hook.name for hooks in self._webhooks.values() for hook in hooks]
        return (*webhooks, *(_callback_name(cb) for cb in self._callbacks))

    def dispatch(
        self,
        alert_type: str,
        message: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        action: str = "trigger",
        link: str | None = None,
    ) -> DispatchOutcome:
        """Deliver one alert, or its resolve, to every handler; report and record each delivery.

        Args:
            alert_type: The alert's kind (an :class:`~xpyrment_sql.alerts.rules.AlertKind` value).
            message: The sentence a person reads.
            payload: The record behind it.
            key: The alert's stable key (PagerDuty's ``dedup_key``); by default
                :func:`~xpyrment_sql.alerts.pager.alert_key` of ``alert_type`` and ``payload``.
            action: ``"trigger"`` (the alert fires) or ``"resolve"`` (its condition has cleared).
            link: An http(s) URL to link back to (a report), shown by Slack and PagerDuty.

        Raises:
            ParameterError: If ``alert_type`` or ``message`` is not a string, ``payload`` not a
                mapping, ``key`` not a non-empty string, ``action`` not one of ``ACTIONS`` or
                ``link`` not an http(s) URL.
        """
        _check_alert(alert_type, message, payload)
        _check_options(key, action, link)
        key = alert_key(alert_type, payload) if key is None else key
        alert = Outgoing(alert_type, message, to_jsonable(payload), key, action, link)
        records = [self._post(hook, alert) for hooks in self._webhooks.values() for hook in hooks]
        records += [_run_callback(callback, alert, payload) for callback in self._callbacks]
        return DispatchOutcome(
            alert_type,
            succeeded=tuple(record.handler for record in records if record.delivered),
            failed=tuple(record.handler for record in records if not record.delivered),
            deliveries=tuple(records),
        )

    def _post(self, hook: _Webhook, alert: Outgoing) -> DeliveryRecord:
        """POST the alert as UTF-8 JSON, retried within the deadline; log why it failed, if it did."""
        record = functools.partial(
            DeliveryRecord, pd.Timestamp.now(tz="UTC"), hook.name, hook.kind, hook.host,
            alert.alert_type, alert.action, alert.key,
        )  # fmt: skip
        try:
            body = BODY_BUILDERS[hook.kind](alert, hook.secret)
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError as exc:
            logger.error("alert handler %s failed: %s", hook.name, _scrub(f"{exc}", hook.url, hook.secret))
            return record("failed", 0, error=type(exc).__name__, reason="the alert cannot be sent as JSON")
        # urllib.request and ssl (about 70 ms to import) load with the first webhook actually posted
        from xpyrment_sql.alerts.delivery import exchange

        done = exchange(
            hook.url, data, timeout=self._timeout, deadline=self._deadline, attempts=self._attempts,
            backoff=self._backoff, draw=self._jitter.random, thread_name=f"alert-{hook.kind}",
        )  # fmt: skip
        last, tries = done.last, len(done.attempts)
        if last.delivered:
            if tries > 1:
                logger.info("alert handler %s delivered after %d attempts", hook.name, tries)
            return record("delivered", tries, status=last.status)
        cause = None if last.cause is None else type(last.cause).__name__
        error = "TimeoutError" if last.timed_out else cause
        if last.status is not None:
            problem = summary = str(_status_problem(last.status))
        elif last.timed_out:
            problem = summary = f"no answer within {last.limit:.3g} s"
        else:
            summary = str(error)
            problem = _scrub(f"{error}: {last.cause}", hook.url, hook.secret)
        retried = f" after {tries} attempts" if tries > 1 else ""
        ending = retried + (f"; {done.stopped}" if done.stopped else "")
        logger.error("alert handler %s failed: %s%s", hook.name, problem, ending)
        return record("failed", tries, status=last.status, error=error, reason=summary + ending)


def _run_callback(callback: AlertCallback, alert: Outgoing, payload: Any) -> DeliveryRecord:
    """Call one callback (a resolve's message marked); log its traceback if it raises."""
    name = _callback_name(callback)
    message = f"{RESOLVED_PREFIX}{alert.message}" if alert.resolved else alert.message
    sent_at = pd.Timestamp.now(tz="UTC")
    record = functools.partial(
        DeliveryRecord, sent_at, name, "callback", None, alert.alert_type, alert.action, alert.key
    )
    try:
        callback(alert.alert_type, message, payload)
    except Exception as exc:
        logger.exception("alert handler %s failed", name)
        error = type(exc).__name__
        return record("failed", 1, error=error, reason=f"the callback raised {error}")
    return record("delivered", 1)


def _check_alert(alert_type: object, message: object, payload: object) -> None:
    """Reject dispatch arguments that no handler could format."""
    for name, value in (("alert_type", alert_type), ("message", message)):
        if not isinstance(value, str):
            raise ParameterError(f"{name} must be a str, got {type(value).__name__}")
    if not isinstance(payload, Mapping):
        raise ParameterError(f"payload must be a mapping, got {type(payload).__name__}")


def _check_options(key: object, action: object, link: object) -> None:
    """Reject a key, action or link no handler could use."""
    if key is not None and not (isinstance(key, str) and key):
        raise ParameterError(f"key must be a non-empty str or None, got {key!r}")
    if action not in ACTIONS:
        raise ParameterError(f"action must be one of {', '.join(map(repr, ACTIONS))}, got {action!r}")
    if link is not None and _url_problem(link) is not None:
        raise ParameterError(f"link must be an http:// or https:// URL with a host, but {_url_problem(link)}")
