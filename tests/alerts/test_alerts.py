"""Tests for the alert dispatcher against a real HTTP server on 127.0.0.1 (no urllib mocks).

The server decides its answer from the request path: ``/status/<code>/...`` answers that code,
``/slow/...`` waits longer than the client timeout, ``/echo-reason/...`` answers 502 with the path
as its reason phrase (a proxy that echoes the secret URL), ``/redirect/...`` answers 302, and every
other path answers 200. Each request is recorded with its method, path, headers and raw body.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.errors import ParameterError, XpyrmentError
from xpyrment_sql.results import DispatchOutcome

pytestmark = pytest.mark.usefixtures("no_proxy")

SLOW_SECONDS = 1.5
PAYLOAD = {"srm_p_value": 0.0004, "arm": "treatment"}


@dataclasses.dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self):
        return json.loads(self.raw.decode("utf-8"))


class _RecordingServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.release = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def do_POST(self) -> None:
        self._record(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def do_GET(self) -> None:
        self._record(b"")

    def _record(self, raw: bytes) -> None:
        received = Received(self.command, self.path, dict(self.headers), raw)
        self.server.received.append(received)
        with contextlib.suppress(OSError):  # the client gave up (timeout test)
            self._answer()

    def _answer(self) -> None:
        if self.path.startswith("/slow"):
            self.server.release.wait(SLOW_SECONDS)
        if self.path.startswith("/status/"):
            self.send_response(int(self.path.split("/")[2]))
        elif self.path.startswith("/echo-reason"):
            self.send_response(502, self.path)
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/ok")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def server():
    srv = _RecordingServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pretty(value) -> str:
    return json.dumps(value, indent=2)


def test_slack_posts_formatted_text(server):
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_slack(server.url("/services/T000/B000/XXX"))
    outcome = dispatcher.dispatch("srm", "Sample ratio mismatch", PAYLOAD)

    assert (outcome.alert_type, outcome.succeeded, outcome.failed) == ("srm", (f"slack:{server.host}",), ())
    [request] = server.received
    assert request.method == "POST"
    assert request.path == "/services/T000/B000/XXX"
    assert request.headers["Content-Type"] == "application/json"
    expected = f"🚨 *[xpyrment Alert]* Sample ratio mismatch\n*Type*: `srm`\n*Payload*: {_pretty(PAYLOAD)}"
    body = request.json()
    assert body["text"] == expected  # the seed's message, now the fallback of the Block Kit layout
    assert set(body) == {"text", "blocks"}


def test_email_posts_subject_and_body(server):
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_email(server.url("/mail"))
    outcome = dispatcher.dispatch("guardrail", "Latency regressed", PAYLOAD)

    assert outcome.succeeded == (f"email:{server.host}",)
    [request] = server.received
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "subject": "[xpyrment Alert] guardrail",
        "body": f"Latency regressed\n\nDetails:\n{_pretty(PAYLOAD)}",
    }


def test_custom_posts_structured_json(server):
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_custom(server.url("/hook?team=growth"))
    outcome = dispatcher.dispatch("traffic", "Traffic dropped", PAYLOAD)

    assert outcome.succeeded == (f"custom:{server.host}",)
    assert outcome.ok
    [request] = server.received
    assert request.path == "/hook?team=growth"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "alert_type": "traffic",
        "message": "Traffic dropped",
        "details": PAYLOAD,
    }


def test_http_500_fails_but_other_handlers_still_run(server):
    calls = []
    dispatcher = WebhookAlertDispatcher(attempts=1)
    dispatcher.register_slack(server.url("/status/500/slack"))
    dispatcher.register_email(server.url("/email"))
    dispatcher.register_custom(server.url("/custom"))
    dispatcher.register_callback(lambda *args: calls.append(args))
    outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    host = server.host
    assert outcome.failed == (f"slack:{host}",)
    assert outcome.succeeded == (f"email:{host}", f"custom:{host}", "callback:<lambda>")
    assert not outcome.ok
    assert [r.path for r in server.received] == ["/status/500/slack", "/email", "/custom"]
    assert calls == [("srm", "msg", PAYLOAD)]


def test_refused_connection_is_a_failure(server):
    port = _closed_port()
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_slack(f"http://127.0.0.1:{port}/nobody-listens")
    dispatcher.register_custom(server.url("/custom"))
    outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    assert outcome.failed == (f"slack:127.0.0.1:{port}",)
    assert outcome.succeeded == (f"custom:{server.host}",)


def test_slow_server_times_out_and_later_handlers_run(server):
    dispatcher = WebhookAlertDispatcher(timeout=0.3, deadline=0.3)
    dispatcher.register_slack(server.url("/slow"))
    dispatcher.register_custom(server.url("/custom"))
    started = time.monotonic()
    outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)
    elapsed = time.monotonic() - started

    assert elapsed < 1.2
    assert outcome.failed == (f"slack:{server.host}",)
    assert outcome.succeeded == (f"custom:{server.host}",)


def test_redirect_is_not_followed_and_counts_as_failure(server):
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_custom(server.url("/redirect"))
    outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    assert outcome.failed == (f"custom:{server.host}",)
    assert [(r.method, r.path) for r in server.received] == [("POST", "/redirect")]


def test_raising_callback_does_not_stop_a_later_callback(caplog):
    received = []

    def boom(alert_type, message, payload):
        raise RuntimeError("callback exploded")

    def record(alert_type, message, payload):
        received.append((alert_type, message, payload))

    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_callback(boom)
    dispatcher.register_callback(record)
    with caplog.at_level(logging.ERROR, logger="xpyrment_sql.alerts.dispatcher"):
        outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    assert (outcome.succeeded, outcome.failed) == (("callback:record",), ("callback:boom",))
    records = [(d.outcome, d.error) for d in outcome.deliveries]
    assert records == [("failed", "RuntimeError"), ("delivered", None)]
    assert received == [("srm", "msg", PAYLOAD)]
    [record_] = caplog.records
    assert record_.name == "xpyrment_sql.alerts.dispatcher"
    assert record_.levelno == logging.ERROR
    assert "callback:boom" in record_.getMessage()


def test_numpy_pandas_and_record_payload_is_sent_as_json(server):
    seen = []
    payload = {
        "n": np.int64(7),
        "p": np.float64(0.25),
        "counts": np.array([1, 2, 3]),
        "at": pd.Timestamp("2024-05-01 12:30:00"),
        "previous": DispatchOutcome("srm", ("slack:x",), ()),
    }
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_slack(server.url("/slack"))
    dispatcher.register_custom(server.url("/custom"))
    dispatcher.register_callback(lambda _type, _msg, got: seen.append(got))
    outcome = dispatcher.dispatch("guardrail", "msg", payload)

    expected = {
        "n": 7,
        "p": 0.25,
        "counts": [1, 2, 3],
        "at": "2024-05-01T12:30:00",
        "previous": {"alert_type": "srm", "succeeded": ["slack:x"], "failed": [], "deliveries": []},
    }
    assert outcome.ok
    slack, custom = server.received
    assert custom.json()["details"] == expected
    assert slack.json()["text"].endswith(f"*Payload*: {_pretty(expected)}")
    assert seen[0] is payload


def test_result_record_can_be_the_whole_payload(server):
    record = DispatchOutcome("srm", ("slack:x",), ("email:y",))
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_custom(server.url("/custom"))
    assert dispatcher.dispatch("srm", "msg", record).ok

    expected = {"alert_type": "srm", "succeeded": ["slack:x"], "failed": ["email:y"], "deliveries": []}
    assert server.received[0].json()["details"] == expected


def test_order_is_slack_email_custom_then_callbacks(server):
    calls = []

    def first(*_args):
        calls.append("first")

    def second(*_args):
        calls.append("second")

    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_callback(first)
    dispatcher.register_custom(server.url("/custom"))
    dispatcher.register_email(server.url("/email"))
    dispatcher.register_slack(server.url("/slack-1"))
    dispatcher.register_callback(second)
    dispatcher.register_slack(server.url("/slack-2"))
    dispatcher.register_callback(lambda *_args: calls.append([r.path for r in server.received] + ["third"]))
    outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    paths = ["/slack-1", "/slack-2", "/email", "/custom"]
    assert calls == ["first", "second", [*paths, "third"]]
    host = server.host
    names = (f"slack:{host}", f"slack:{host}", f"email:{host}", f"custom:{host}")
    assert outcome.succeeded == (*names, "callback:first", "callback:second", "callback:<lambda>")
    assert dispatcher.handler_names == outcome.succeeded


def test_secret_url_parts_never_reach_logs_or_outcome(server, caplog):
    secret = "/services/T000/SECRET-TOKEN"
    dispatcher = WebhookAlertDispatcher(timeout=0.3, deadline=0.6, attempts=2, backoff=0.01)
    dispatcher.register_slack(server.url(f"/status/500{secret}?key=SECRET-TOKEN"))
    email_port = _closed_port()
    dispatcher.register_email(f"http://127.0.0.1:{email_port}{secret}")
    dispatcher.register_custom(server.url(f"/echo-reason{secret}"))
    dispatcher.register_custom(server.url(f"/slow{secret}"))
    with caplog.at_level(logging.DEBUG, logger="xpyrment_sql.alerts.dispatcher"):
        outcome = dispatcher.dispatch("srm", "msg", PAYLOAD)

    assert len(outcome.failed) == 4
    assert not outcome.succeeded
    assert len(caplog.records) == 4
    assert all(r.levelno == logging.ERROR and r.exc_info is None for r in caplog.records)
    # the failures are described (kind, host, status or exception class) ...
    assert "slack:127.0.0.1" in caplog.text
    assert "HTTP 500 Internal Server Error" in caplog.text
    assert "HTTP 502 Bad Gateway" in caplog.text
    assert "ConnectionRefusedError" in caplog.text
    assert "no answer within" in caplog.text
    # ... but nothing of the secret path, even when the server echoes it in its reason phrase
    assert "SECRET-TOKEN" not in caplog.text
    assert "T000" not in caplog.text
    assert "SECRET-TOKEN" not in repr(outcome)
    assert "SECRET-TOKEN" not in repr(dispatcher.handler_names)
    assert "SECRET-TOKEN" not in repr(vars(dispatcher))
    assert "SECRET-TOKEN" not in json.dumps(outcome.to_dict())
    assert "T000" not in json.dumps(outcome.to_dict())
    hosts = [d.host for d in outcome.deliveries]
    assert hosts == [server.host, f"127.0.0.1:{email_port}", server.host, server.host]


def test_handler_names_use_host_only_and_callable_type_without_name():
    dispatcher = WebhookAlertDispatcher()
    dispatcher.register_slack("https://hooks.slack.com/services/T000/B000/SECRET-TOKEN")
    dispatcher.register_email("http://[::1]:8025/send")
    dispatcher.register_callback(functools.partial(print))

    assert dispatcher.handler_names == (
        "slack:hooks.slack.com",
        "email:[::1]:8025",
        "callback:<class 'functools.partial'>",
    )


@pytest.mark.parametrize(
    ("kind", "url", "problem"),
    [
        ("slack", "ftp://x/y", "scheme is not http or https"),
        ("slack", "ftp://hooks.example.com/SECRET-TOKEN", "scheme is not http or https"),
        ("slack", "SECRET-TOKEN:hooks.example.com/x", "scheme is not http or https"),
        ("custom", "not a url", "space"),
        ("custom", "hooks.example.com/SECRET-TOKEN", "scheme is not http or https"),
        ("custom", "https:///SECRET-TOKEN", "no host"),
        ("custom", "http://[SECRET-TOKEN/x", "cannot be parsed"),
        ("email", "http://user:SECRET-TOKEN@mail.example.com/send", "credentials"),
        ("email", "http://mail.example.com:SECRET-TOKEN/send", "cannot be parsed"),
        ("custom", "http://example.com/SECRET-TOKEN\n", "control character"),
        ("custom", "http://example.com/SECRET-TOKEN-\u00e9", "non-ASCII"),
        ("custom", 42, "got int, not str"),
    ],
)
def test_bad_urls_are_rejected_naming_the_kind_without_echoing_them(kind, url, problem):
    dispatcher = WebhookAlertDispatcher()
    with pytest.raises(ParameterError, match=rf"^{kind} url must be an http:// or https:// URL") as info:
        getattr(dispatcher, f"register_{kind}")(url)

    message = str(info.value)
    assert problem in message
    # nothing of the value, not even in the chained exceptions a traceback would print
    shown = "".join(traceback.format_exception(info.value))
    for secret in ("SECRET-TOKEN", "secret-token", "x/y", "not a url"):
        assert secret not in shown
    assert dispatcher.handler_names == ()


def test_non_callable_callback_is_rejected():
    dispatcher = WebhookAlertDispatcher()
    with pytest.raises(XpyrmentError, match="callback must be callable"):
        dispatcher.register_callback(42)
    assert dispatcher.handler_names == ()


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), True, "5", None])
def test_bad_timeout_is_rejected(timeout):
    with pytest.raises(ParameterError, match=r"^timeout must be a finite number of seconds > 0"):
        WebhookAlertDispatcher(timeout=timeout)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"deadline": 0}, r"^deadline must be a finite number of seconds > 0, got 0"),
        ({"deadline": float("inf")}, r"^deadline must be a finite number of seconds > 0"),
        ({"deadline": "30"}, r"^deadline must be a finite number of seconds > 0"),
        ({"attempts": 0}, r"^attempts must be an int >= 1 \(1: no retry\), got 0"),
        ({"attempts": 2.0}, r"^attempts must be an int >= 1"),
        ({"attempts": True}, r"^attempts must be an int >= 1"),
        ({"backoff": -0.1}, r"^backoff must be a finite number of seconds >= 0"),
        ({"backoff": float("nan")}, r"^backoff must be a finite number of seconds >= 0"),
    ],
)
def test_bad_retry_options_are_rejected_naming_them(options, message):
    with pytest.raises(ParameterError, match=message):
        WebhookAlertDispatcher(**options)


def test_retry_options_have_defaults_and_the_deadline_follows_the_timeout():
    dispatcher = WebhookAlertDispatcher()
    options = (dispatcher.timeout, dispatcher.deadline, dispatcher.attempts, dispatcher.backoff)
    assert options == (10, 30, 4, 0.5)
    assert WebhookAlertDispatcher(timeout=2).deadline == 6
    custom = WebhookAlertDispatcher(timeout=2, deadline=5, attempts=np.int64(1), backoff=0)
    assert (custom.deadline, custom.attempts, custom.backoff) == (5, 1, 0)


def test_timeout_is_keyword_only_with_a_default():
    assert WebhookAlertDispatcher().timeout == 10.0
    assert WebhookAlertDispatcher(timeout=np.float32(0.5)).timeout == 0.5
    with pytest.raises(TypeError):
        WebhookAlertDispatcher(5)


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        ((1, "msg", {}), "alert_type"),
        (("srm", None, {}), "message"),
        (("srm", "msg", [1, 2]), "payload"),
    ],
)
def test_bad_dispatch_arguments_are_rejected(args, parameter):
    with pytest.raises(ParameterError, match=f"^{parameter} must be"):
        WebhookAlertDispatcher().dispatch(*args)


def test_parameter_errors_are_value_errors():
    with pytest.raises(ValueError, match="timeout"):
        WebhookAlertDispatcher(timeout=0)
