"""Push experiment alerts to Slack, e-mail services, custom webhooks and Python callbacks.

One failing handler never stops the others: every failure is logged and reported in the returned
``DispatchOutcome``. Webhook URLs are secrets (a Slack URL embeds its token), so handlers are only
ever named by kind and host, and urllib error messages are scrubbed of the URL before logging.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import DispatchOutcome, to_jsonable

logger = logging.getLogger("xpyrment_sql.alerts")

AlertCallback = Callable[[str, str, Mapping[str, Any]], None]

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would re-send the POST as a body-less GET, losing the alert."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Follow nothing, so a 3xx response surfaces as an ``HTTPError`` (a failed delivery)."""


def _parse_url(url: object) -> SplitResult | None:
    """Return the parts of ``url`` if urllib can POST to it, else ``None``.

    Needed: http(s), a host, a valid port, printable ASCII without spaces (urllib cannot send
    anything else) and no credentials (urllib would resolve ``user:password@host`` as a host).
    """
    if not isinstance(url, str) or not (url.isascii() and url.isprintable()) or " " in url:
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return None
    valid = parts.scheme.lower() in ("http", "https") and parts.hostname and "@" not in parts.netloc
    return parts if valid else None


def _host_label(parts: SplitResult) -> str:
    """Return ``host[:port]`` — the only part of a webhook URL that may be shown."""
    host = f"[{parts.hostname}]" if ":" in str(parts.hostname) else str(parts.hostname)
    return f"{host}:{parts.port}" if parts.port is not None else host


def _scrub(text: str, url: str) -> str:
    """Remove the URL and everything after its host from ``text``, plus any part of it long
    enough to be a token (short parts such as ``500`` or ``v1`` would only mangle the text)."""
    parts = urlsplit(url)
    tail = url.split(parts.netloc, 1)[1]
    tokens = (parts.path, parts.query, parts.fragment, *parts.path.split("/"))
    pieces = {url, tail, *(p for p in tokens if len(p) >= _TOKEN_LENGTH)} - {"", "/"}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, _REDACTED).replace(repr(piece)[1:-1], _REDACTED)
    return text


@dataclasses.dataclass(frozen=True)
class _Webhook:
    """One registered HTTP endpoint: ``name`` is safe to show, ``url`` is a secret."""

    kind: str
    name: str
    url: str = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, kind: str, url: str) -> _Webhook:
        """Validate ``url``; the error never echoes it because webhook URLs carry secrets."""
        parts = _parse_url(url)
        if parts is None:
            raise ParameterError(
                "url must be an http:// or https:// URL with a host, printable ASCII only "
                "(percent-encode the rest), no spaces and no user:password@ credentials "
                "(the value is not shown because webhook URLs carry secrets)"
            )
        return cls(kind, f"{kind}:{_host_label(parts)}", url)


def _callback_name(callback: AlertCallback) -> str:
    return f"callback:{getattr(callback, '__name__', None) or repr(type(callback))}"


class WebhookAlertDispatcher:
    """Send each alert to every registered webhook and callback, isolating failures.

    HTTP handlers run first (Slack, then e-mail, then custom; registration order within a kind),
    then callbacks in registration order.

    Args:
        timeout: Socket timeout in seconds for each HTTP request; must be a finite number > 0.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        real = isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
        if not (real and 0 < timeout < math.inf):
            raise ParameterError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        self._timeout = float(timeout)
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._webhooks: dict[str, list[_Webhook]] = {kind: [] for kind in _BODY_BUILDERS}
        self._callbacks: list[AlertCallback] = []

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
        """POST ``body`` as UTF-8 JSON; return False (after logging a scrubbed error) on failure."""
        try:  # everything inside: one handler must never stop the others
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(hook.url, data, headers, method="POST")
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read()
        except Exception as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            reason = _scrub(str(exc), hook.url)
            logger.error("alert handler %s failed: %s: %s", hook.name, type(exc).__name__, reason)
            return False
        return True


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
