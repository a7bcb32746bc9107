"""A webhook can never hang or mislead the monitor: delivery against misbehaving servers on 127.0.0.1.

Each server is a raw TCP listener whose connections all run one scripted behaviour — fail, stall,
drip the answer one byte at a time, stream a body forever, answer with a huge body, answer slowly,
redirect, answer 429 — so the client sees exactly what a broken or hostile endpoint would send.
Every loop on the server side is bounded, and a server stops by itself after a few seconds even if
the test never closes it. Deadlines are tight (0.5 s) and elapsed times are bounded generously,
because the machine running the suite may be busy. The tests of one attempt's behaviour switch
retries off (``attempts=1``); the retries have their own tests at the end.
"""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
import time
import urllib.error
from collections.abc import Callable

import pytest

from xpyrment_sql.alerts.delivery import Attempt
from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher

pytestmark = pytest.mark.usefixtures("no_proxy")

DEADLINE = 0.5
SLACK = 1.5  # seconds of noise an elapsed-time bound allows beyond the deadline
LIFETIME = 6.0  # seconds after which a server stops on its own
DRIP_INTERVAL = 0.05
SECRET_PATH = "/services/T000/B000/SECRET-TOKEN"
SECRET_QUERY = "key=QUERY-SECRET"
SECRETS = ("SECRET-TOKEN", "QUERY-SECRET", "T000", "B000", "services")
PAYLOAD = {"srm_p_value": 0.0004}


class ScriptedServer:
    """A TCP server on 127.0.0.1 that reads each request and then runs ``behaviour`` on it.

    ``requests`` holds the request lines received, in order. The server stops on :meth:`close` or
    after ``LIFETIME`` seconds, whichever comes first; behaviours wait through :meth:`pause`, which
    returns True once the server is stopping, so no loop outlives it.
    """

    def __init__(self, behaviour: Callable[[ScriptedServer, socket.socket, str], None]) -> None:
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._ends_at = time.monotonic() + LIFETIME
        self._threads: list[threading.Thread] = []
        self.requests: list[str] = []
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = f"{SECRET_PATH}?{SECRET_QUERY}") -> str:
        return f"http://{self.host}{path}"

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True if the server is stopping (closed or out of lifetime)."""
        remaining = self._ends_at - time.monotonic()
        return self._stop.wait(min(seconds, max(remaining, 0))) or remaining <= seconds

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=LIFETIME)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        with self._listener:
            while not self._stop.is_set() and time.monotonic() < self._ends_at:
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(LIFETIME)
            try:
                request_line = _read_request(conn)
                self.requests.append(request_line)
                self._behaviour(self, conn, request_line)
            except OSError:  # the client hung up, which is what most tests expect it to do
                return


def _read_request(conn: socket.socket) -> str:
    """Read one request's head and body; return its request line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("client closed before sending a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (h.partition(":") for h in lines) if k.lower() == "content-length"), 0
    )
    while len(body) < length:
        body += conn.recv(4096)
    return lines[0]


def answer(status: str, headers: tuple[str, ...] = (), body: bytes = b"ok", delay: float = 0):
    """A complete answer, sent after ``delay`` seconds."""

    def behaviour(server: ScriptedServer, conn: socket.socket, _request_line: str) -> None:
        if delay and server.pause(delay):
            return
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    return behaviour


def stall(server: ScriptedServer, _conn: socket.socket, _request_line: str) -> None:
    """Accept and read the request, then never answer."""
    server.pause(LIFETIME)


def drip_head(server: ScriptedServer, conn: socket.socket, _request_line: str) -> None:
    """Send a 200 one byte at a time, in a head that never ends (a header per 40 bytes)."""
    conn.sendall(b"H")
    for byte in b"TTP/1.1 200 OK\r\n" + b"X-Padding: still coming....................\r\n" * 100:
        if server.pause(DRIP_INTERVAL):
            return
        conn.sendall(bytes([byte]))


def drip_body(server: ScriptedServer, conn: socket.socket, _request_line: str) -> None:
    """Answer 200 promptly, then drip a body that never ends, one byte at a time."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    while not server.pause(DRIP_INTERVAL):
        conn.sendall(b".")


def stream_forever(server: ScriptedServer, conn: socket.socket, _request_line: str) -> None:
    """Answer 200 with a chunked body streamed as fast as the client takes it, forever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    while not server.pause(0):
        conn.sendall(chunk)


def huge_body(server: ScriptedServer, conn: socket.socket, _request_line: str) -> None:
    """Answer 200 announcing a 1 TiB body and send it as fast as the client takes it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n")
    block = b"x" * 65536
    while not server.pause(0):
        conn.sendall(block)


def echo_request_line(server: ScriptedServer, conn: socket.socket, request_line: str) -> None:
    """Answer with the request line as the status line: a broken endpoint (or proxy) whose
    garbage answer quotes the URL, so the client's exception text contains the secret."""
    conn.sendall(f"{request_line} cannot be reached\r\n\r\n".encode("latin-1"))


@pytest.fixture
def serve():
    """Start scripted servers; all of them stop when the test ends."""
    servers: list[ScriptedServer] = []

    def start(behaviour: Callable[[ScriptedServer, socket.socket, str], None]) -> ScriptedServer:
        servers.append(ScriptedServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dispatch(dispatcher: WebhookAlertDispatcher, caplog: pytest.LogCaptureFixture):
    """Dispatch one alert with logs captured; return the outcome and the seconds it took."""
    with caplog.at_level(logging.DEBUG, logger="xpyrment_sql.alerts.dispatcher"):
        started = time.monotonic()
        outcome = dispatcher.dispatch("srm", "Sample ratio mismatch", PAYLOAD)
        return outcome, time.monotonic() - started


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


FAILURES = [
    pytest.param(answer("500 Internal Server Error"), "HTTP 500 Internal Server Error", id="500"),
    pytest.param(answer(f"502 {SECRET_PATH}"), "HTTP 502 Bad Gateway", id="502-reason-echoes-path"),
    pytest.param(answer("429 Too Many Requests", ("Retry-After: 1",)), "HTTP 429 Too Many", id="429"),
    pytest.param(stall, "no answer within 0.5 s", id="stall"),
    pytest.param(drip_head, "no answer within 0.5 s", id="drip-head"),
    pytest.param(answer("200 OK", delay=3.0), "no answer within 0.5 s", id="too-slow"),
    pytest.param(
        echo_request_line, "BadStatusLine: POST <redacted> HTTP/1.1 cannot", id="garbage-quoting-the-url"
    ),
]


@pytest.mark.parametrize(("behaviour", "reason"), FAILURES)
def test_misbehaving_server_fails_within_the_deadline_without_leaking_the_url(
    serve, caplog, behaviour, reason
):
    server = serve(behaviour)
    healthy = serve(answer("200 OK"))
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, attempts=1)
    dispatcher.register_slack(server.url())
    dispatcher.register_custom(healthy.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < DEADLINE + SLACK
    assert outcome.failed == (f"slack:{server.host}",)
    assert outcome.succeeded == (f"custom:{healthy.host}",)
    assert server.requests == [f"POST {SECRET_PATH}?{SECRET_QUERY} HTTP/1.1"]  # one attempt, no retry
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is None
    assert "\r" not in record.getMessage()  # the server's bytes cannot forge log lines
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith(f"alert handler slack:{server.host} failed: {reason}")
    _assert_no_secret(caplog.text, repr(outcome), json.dumps(outcome.to_dict()))
    assert [(d.outcome, d.attempts) for d in outcome.deliveries] == [("failed", 1), ("delivered", 1)]


def test_refused_connection_is_retried_and_fails_quickly(caplog):
    port = _closed_port()
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, attempts=3, backoff=0.01)
    dispatcher.register_email(f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}")
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < DEADLINE + SLACK
    assert outcome.failed == (f"email:127.0.0.1:{port}",)
    assert "ConnectionRefusedError" in caplog.text
    assert "after 3 attempts" in caplog.text
    [delivery] = outcome.deliveries
    assert (delivery.attempts, delivery.status, delivery.error) == (3, None, "ConnectionRefusedError")
    _assert_no_secret(caplog.text, repr(outcome), json.dumps(outcome.to_dict()))


@pytest.mark.parametrize(
    ("behaviour", "timeout", "max_elapsed"),
    [
        pytest.param(answer("200 OK", delay=0.2), DEADLINE, DEADLINE + SLACK, id="slow-but-in-time"),
        pytest.param(answer("204 No Content", body=b""), DEADLINE, DEADLINE + SLACK, id="204"),
        pytest.param(drip_body, DEADLINE, DEADLINE + SLACK, id="drip-body"),
        # the body is read up to a few KiB, not until the 5 s deadline: these end long before it
        pytest.param(stream_forever, 5.0, 2.0, id="stream-forever"),
        pytest.param(huge_body, 5.0, 2.0, id="huge-body"),
    ],
)
def test_a_2xx_answer_is_a_delivery_whatever_its_body_does(serve, caplog, behaviour, timeout, max_elapsed):
    server = serve(behaviour)
    dispatcher = WebhookAlertDispatcher(timeout=timeout)
    dispatcher.register_custom(server.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < max_elapsed
    assert outcome.succeeded == (f"custom:{server.host}",)
    assert outcome.ok
    assert not caplog.records


@pytest.mark.parametrize(
    "status",
    [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ],
)
@pytest.mark.parametrize("target", ["other-host", "same-host-path"])
def test_redirect_is_never_followed(serve, caplog, status, target):
    elsewhere = serve(answer("200 OK"))
    location = elsewhere.url("/collect") if target == "other-host" else "/collect"
    server = serve(answer(status, (f"Location: {location}",)))
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE)
    dispatcher.register_slack(server.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < DEADLINE + SLACK
    assert outcome.failed == (f"slack:{server.host}",)
    assert len(server.requests) == 1
    assert elsewhere.requests == []
    code = status.split()[0]
    assert f"failed: redirect not followed (HTTP {code} " in caplog.text
    [delivery] = outcome.deliveries
    assert (delivery.attempts, delivery.status, delivery.outcome) == (1, int(code), "failed")
    _assert_no_secret(caplog.text, repr(outcome), json.dumps(outcome.to_dict()))


def test_every_webhook_gets_its_own_deadline_and_the_rest_still_run(serve, caplog):
    stalled, dripping, healthy = serve(stall), serve(drip_head), serve(answer("200 OK"))
    calls = []
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, deadline=DEADLINE)
    dispatcher.register_slack(stalled.url())
    dispatcher.register_email(dripping.url())
    dispatcher.register_custom(healthy.url())
    dispatcher.register_callback(lambda *args: calls.append(args))
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < 2 * DEADLINE + SLACK
    assert outcome.failed == (f"slack:{stalled.host}", f"email:{dripping.host}")
    assert outcome.succeeded == (f"custom:{healthy.host}", "callback:<lambda>")
    assert len(calls) == 1


def test_an_abandoned_delivery_lets_go_of_its_connection(serve, caplog):
    """At the deadline the connection is shut down, so the worker does not drip on in the background."""
    server = serve(drip_head)
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, attempts=1)
    dispatcher.register_slack(server.url())
    _dispatch(dispatcher, caplog)

    ends = time.monotonic() + SLACK
    while time.monotonic() < ends and any(t.name == "alert-slack" for t in threading.enumerate()):
        time.sleep(0.02)
    assert not any(t.name == "alert-slack" for t in threading.enumerate())


def test_tls_handshake_that_never_completes_ends_at_the_deadline(serve, caplog):
    """The server accepts the TCP connection and never answers the TLS ClientHello."""
    server = serve(stall)
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, attempts=1)
    dispatcher.register_slack(f"https://{server.host}{SECRET_PATH}")
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < DEADLINE + SLACK
    assert outcome.failed == (f"slack:{server.host}",)
    assert "no answer within 0.5 s" in caplog.text
    ends = time.monotonic() + SLACK
    while time.monotonic() < ends and any(t.name == "alert-slack" for t in threading.enumerate()):
        time.sleep(0.02)
    assert not any(t.name == "alert-slack" for t in threading.enumerate())


def test_a_proxy_quoting_the_full_url_in_its_error_leaks_nothing(serve, caplog, monkeypatch):
    """Through an HTTP proxy the request line carries the whole URL; an answer quoting it is
    an exception whose text holds the secret, and still nothing of it reaches the log."""
    proxy = serve(echo_request_line)
    monkeypatch.setenv("http_proxy", f"http://{proxy.host}")
    target = f"http://hooks.invalid{SECRET_PATH}?{SECRET_QUERY}"
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE)
    dispatcher.register_custom(target)
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < DEADLINE + SLACK
    assert proxy.requests == [f"POST {target} HTTP/1.1"]
    assert outcome.failed == ("custom:hooks.invalid",)
    assert "BadStatusLine" in caplog.text
    _assert_no_secret(caplog.text, repr(outcome))


@pytest.mark.parametrize(
    ("attempt", "retryable"),
    [
        pytest.param(Attempt(0.5, status=500), True, id="500"),
        pytest.param(Attempt(0.5, status=503), True, id="503"),
        pytest.param(Attempt(0.5, status=429), True, id="429"),
        pytest.param(Attempt(0.5, status=404), False, id="404"),
        pytest.param(Attempt(0.5, status=400), False, id="400"),
        pytest.param(Attempt(0.5, status=302), False, id="302"),
        pytest.param(Attempt(0.5, timed_out=True), True, id="timeout"),
        pytest.param(Attempt(0.5, error=ConnectionRefusedError("refused")), True, id="refused"),
        pytest.param(
            Attempt(0.5, error=urllib.error.URLError(ConnectionResetError("reset"))), True, id="wrapped-reset"
        ),
        pytest.param(Attempt(0.5, error=ValueError("garbled")), False, id="garbled"),
    ],
)
def test_only_failures_a_repeat_may_fix_are_retried(attempt, retryable):
    assert attempt.retryable is retryable
    assert not attempt.delivered


def test_a_404_is_not_retried(serve, caplog):
    server = serve(answer("404 Not Found"))
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, attempts=4, backoff=0.01)
    dispatcher.register_custom(server.url())
    outcome, _ = _dispatch(dispatcher, caplog)

    assert len(server.requests) == 1
    assert outcome.deliveries[0].attempts == 1
    assert "failed: HTTP 404 Not Found" in caplog.text
    assert "after" not in caplog.text


def test_a_stalled_server_is_retried_until_the_deadline_and_fails(serve, caplog):
    server = serve(stall)
    dispatcher = WebhookAlertDispatcher(timeout=0.3, deadline=1.0, attempts=10, backoff=0.01)
    dispatcher.register_slack(server.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert 0.9 < elapsed < 1.0 + SLACK
    assert outcome.failed == (f"slack:{server.host}",)
    [delivery] = outcome.deliveries
    assert delivery.attempts == len(server.requests) >= 3
    assert (delivery.status, delivery.error) == (None, "TimeoutError")
    assert delivery.reason.startswith("no answer within ")
    [record] = caplog.records
    assert f"after {delivery.attempts} attempts" in record.getMessage()
    _assert_no_secret(caplog.text, repr(outcome), json.dumps(outcome.to_dict()))


def test_a_retry_after_beyond_the_deadline_stops_the_retries_and_says_why(serve, caplog):
    server = serve(answer("503 Service Unavailable", ("Retry-After: 120",)))
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, deadline=2.0, backoff=0.01)
    dispatcher.register_custom(server.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert elapsed < 1.0
    assert len(server.requests) == 1
    [delivery] = outcome.deliveries
    assert delivery.reason.startswith("HTTP 503 Service Unavailable; Retry-After asked for 120 s, more than")
    assert "Retry-After asked for 120 s, more than the" in caplog.text
    assert "left before the deadline" in caplog.text


def test_a_retry_after_date_is_honoured(serve, caplog):
    """An HTTP-date the next whole second (the format has no fractions): the retry waits for it."""
    now = time.time()
    wait = int(now + 1) - now
    header = f"Retry-After: {email.utils.formatdate(now + 1, usegmt=True)}"
    server = serve(answer("429 Too Many Requests", (header,)))
    dispatcher = WebhookAlertDispatcher(timeout=DEADLINE, deadline=3.0, attempts=2, backoff=0.01)
    dispatcher.register_custom(server.url())
    outcome, elapsed = _dispatch(dispatcher, caplog)

    assert len(server.requests) == 2
    assert wait - 0.05 < elapsed < 1.0 + SLACK
    assert outcome.deliveries[0].reason == "HTTP 429 Too Many Requests after 2 attempts"
