"""Push experiment alerts to Slack, e-mail services, custom webhooks and Python callbacks.

One failing handler never stops the others: every failure is logged (one line: handler kind, host,
reason) and reported in the returned ``DispatchOutcome``. A live monitor is only as alive as its
slowest webhook, so each HTTP delivery ends within a total deadline whatever the server does (stall,
drip one byte at a time, stream forever, redirect); at most a few KiB of any response are read.
Webhook URLs are secrets (a Slack URL embeds its token), so handlers are only ever named by kind
and host, and no URL reaches a log line, a result or an error message.
"""

from __future__ import annotations

import dataclasses
import http
import json
import logging
import math
import numbers
import threading
import urllib.error
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import DispatchOutcome, to_jsonable

logger = logging.getLogger("xpyrment_sql.alerts.dispatcher")

AlertCallback = Callable[[str, str, Mapping[str, Any]], None]

DEFAULT_TIMEOUT = 10.0
"""Seconds one webhook delivery may take in total: connect, send, answer and body together."""

_REASON_LIMIT = 200  # characters of an error text logged at most (a bad status line can be huge)
_REDACTED = "<redacted>"
_TOKEN_LENGTH = 6


def _pretty(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)


def _slack_body(alert_type: str, message: str, payload: Any) -> dict[str, Any]:
    text = f"🚨 *[xpyrment Alert]* {message}\n*Type*: `{alert_type}`\n*Payload*: {_pretty(payload)}"
    return {"text": text}


def _email_body(alert_type: str, message: str, payload: Any) -> dict[str, Any]:
    return {
        "subject": f"[xpyrment Alert] {alert_type}",
        "body": f"{message}\n\nDetails:\n{_pretty(payload)}",
    }


def _custom_body(alert_type: str, message: str, payload: Any) -> dict[str, Any]:
    return {"alert_type": alert_type, "message": message, "details": payload}


# Insertion order is dispatch order: slack, then email, then custom.
_BODY_BUILDERS: dict[str, Callable[[str, str, Any], dict[str, Any]]] = {
    "slack": _slack_body,
    "email": _email_body,
    "custom": _custom_body,
}


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


def _scrub(text: str, url: str) -> str:
    """Remove the URL and everything after its host from ``text``, plus any part of it long
    enough to be a token (short parts such as ``500`` or ``v1`` would only mangle the text),
    percent-encoded or not; then escape control characters (the text may come from the server,
    which must not forge log lines) and cut the result to a log-friendly length."""
    parts = urlsplit(url)
    tail = url.split(parts.netloc, 1)[1]
    query_parts = parts.query.replace("=", "&").split("&")
    tokens = (parts.path, parts.query, parts.fragment, *parts.path.split("/"), *query_parts)
    pieces = {url, tail, *(p for p in tokens if len(p) >= _TOKEN_LENGTH)} - {"", "/"}
    pieces |= {unquote(piece) for piece in pieces}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, _REDACTED).replace(repr(piece)[1:-1], _REDACTED)
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text.strip())
    return text if len(text) <= _REASON_LIMIT else f"{text[:_REASON_LIMIT]}..."


@dataclasses.dataclass(frozen=True)
class _Webhook:
    """One registered HTTP endpoint: ``name`` is safe to show, ``url`` is a secret."""

    kind: str
    name: str
    url: str = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, kind: str, url: str) -> _Webhook:
        """Validate ``url``; the error never echoes it because webhook URLs carry secrets."""
        problem = _url_problem(url)
        if problem is not None:
            raise ParameterError(
                f"{kind} url must be an http:// or https:// URL with a host, but {problem} "
                "(the value is not shown because webhook URLs carry secrets)"
            )
        return cls(kind, f"{kind}:{_host_label(urlsplit(url))}", url)


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


class WebhookAlertDispatcher:
    """Send each alert to every registered webhook and callback, isolating failures.

    HTTP handlers run first (Slack, then e-mail, then custom; registration order within a kind),
    then callbacks in registration order. Each webhook gets one attempt per alert, ended by the
    deadline: with ``n`` webhooks a dispatch takes at most about ``n * timeout`` seconds, plus what
    the callbacks take. A 2xx answer is a delivery (its body is read up to 4 KiB within the
    deadline, never more); any other status, a redirect (never followed), a network error or no
    answer by the deadline is a failure, logged as ``kind:host`` and a reason.

    Args:
        timeout: Total seconds one webhook delivery may take — connecting, sending, waiting for the
            answer and reading its body — whatever the server does; a finite number > 0.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        real = isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
        if not (real and 0 < timeout < math.inf):
            raise ParameterError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        self._timeout = float(timeout)
        self._webhooks: dict[str, list[_Webhook]] = {kind: [] for kind in _BODY_BUILDERS}
        self._callbacks: list[AlertCallback] = []

    @property
    def timeout(self) -> float:
        """Total seconds one webhook delivery may take."""
        return self._timeout

    def register_slack(self, url: str) -> None:
        """Post alerts to a Slack incoming-webhook URL as a formatted ``text`` message."""
        self._webhooks["slack"].append(_Webhook.parse("slack", url))

    def register_email(self, url: str) -> None:
        """Post alerts as ``{"subject", "body"}`` JSON to an e-mail notification service."""
        self._webhooks["email"].append(_Webhook.parse("email", url))

    def register_custom(self, url: str) -> None:
        """Post alerts as ``{"alert_type", "message", "details"}`` JSON to any endpoint."""
        self._webhooks["custom"].append(_Webhook.parse("custom", url))

    def register_callback(self, callback: AlertCallback) -> None:
        """Call ``callback(alert_type, message, payload)`` with the original payload object."""
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

    def dispatch(self, alert_type: str, message: str, payload: Mapping[str, Any]) -> DispatchOutcome:
        """Deliver one alert to every handler and report which succeeded and which failed.

        Raises:
            ParameterError: If ``alert_type`` or ``message`` is not a string or ``payload`` is
                not a mapping.
        """
        _check_alert(alert_type, message, payload)
        jsonable = to_jsonable(payload)
        succeeded: list[str] = []
        failed: list[str] = []
        for hooks in self._webhooks.values():
            for hook in hooks:
                ok = self._post(hook, _BODY_BUILDERS[hook.kind](alert_type, message, jsonable))
                (succeeded if ok else failed).append(hook.name)
        for callback in self._callbacks:
            ok = _run_callback(callback, alert_type, message, payload)
            (succeeded if ok else failed).append(_callback_name(callback))
        return DispatchOutcome(alert_type, tuple(succeeded), tuple(failed))

    def _post(self, hook: _Webhook, body: dict[str, Any]) -> bool:
        """POST ``body`` as UTF-8 JSON within the deadline; log why and return False on failure."""
        try:
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError as exc:
            logger.error("alert handler %s failed: %s", hook.name, _scrub(f"{exc}", hook.url))
            return False
        # urllib.request and ssl (about 70 ms to import) load with the first webhook actually posted
        from xpyrment_sql.alerts.delivery import Delivery

        delivery = Delivery(hook.url, data, self._timeout)
        threading.Thread(target=delivery.run, name=f"alert-{hook.kind}", daemon=True).start()
        finished = delivery.finished.wait(self._timeout)
        delivery.abandon()
        status = delivery.status
        if status is not None:
            problem = _status_problem(status)
        elif not finished or _timed_out(delivery.error):
            problem = f"no answer within the {self._timeout:g} s deadline"
        else:
            problem = _error_text(delivery.error, hook.url)
        if problem is not None:
            logger.error("alert handler %s failed: %s", hook.name, problem)
        return problem is None


def _timed_out(error: Exception | None) -> bool:
    """Whether the worker's own socket timeout (the same deadline) stopped it, urllib's wrapper or not.

    The worker's socket timeout and the dispatcher's wait are the same length, so either may end a
    stalled delivery first; both are the deadline passing and are reported alike.
    """
    reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, TimeoutError)


def _error_text(error: Exception | None, url: str) -> str:
    """``Class: message`` of what stopped a delivery (urllib's wrapper unwrapped), URL scrubbed."""
    reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
    return _scrub(f"{type(reason).__name__}: {reason}", url)


def _run_callback(callback: AlertCallback, alert_type: str, message: str, payload: Any) -> bool:
    """Call one callback; log its traceback and return False if it raises."""
    try:
        callback(alert_type, message, payload)
    except Exception:
        logger.exception("alert handler %s failed", _callback_name(callback))
        return False
    return True


def _check_alert(alert_type: object, message: object, payload: object) -> None:
    """Reject dispatch arguments that no handler could format."""
    for name, value in (("alert_type", alert_type), ("message", message)):
        if not isinstance(value, str):
            raise ParameterError(f"{name} must be a str, got {type(value).__name__}")
    if not isinstance(payload, Mapping):
        raise ParameterError(f"payload must be a mapping, got {type(payload).__name__}")
