"""Webhook POSTs within a total deadline, retried: the HTTP side of :mod:`xpyrment_sql.alerts.dispatcher`.

One :class:`Delivery` is one POST on a worker thread, ended by its timeout whatever the server does.
:func:`exchange` repeats it on failures worth retrying (a connection error, no answer in time, a 5xx or
a 429), waiting an exponential backoff with full jitter between attempts, or what the server's
``Retry-After`` asks for on a 429 or 503, and stops at the total deadline. Anything else (another 4xx,
a redirect, a garbled answer) is final at once: repeating it would get the same answer.

Kept apart from the dispatcher because ``urllib.request`` brings ``http.client`` and ``ssl`` (about
70 ms to import): the dispatcher imports this module when it first posts to a webhook, so a run that
sends no alert never loads them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.message
import email.utils
import http.client
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from typing import IO, Any

RESPONSE_LIMIT = 4096
"""Bytes of a response body read at most; only the status decides."""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: following one would send the alert to a host or path nobody
    registered (for 301-303 as a body-less GET). Returning ``None`` lets urllib raise the 3xx as an
    ``HTTPError``, which the delivery reports as a failure."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: email.message.Message,
        newurl: str,
    ) -> None:
        """Build no follow-up request for any redirect, so urllib raises the 3xx as an error."""


class Delivery:
    """One POST of one alert to one webhook, run on a worker thread.

    urllib's ``timeout`` bounds each socket operation, not the exchange: a server that drips its
    answer one byte at a time never trips it. So the dispatcher waits for the worker at most the
    deadline and then calls :meth:`abandon`, which shuts the connection down (unblocking any read
    or write in progress) and stops a connection still being opened from sending anything.
    """

    def __init__(self, url: str, data: bytes, timeout: float) -> None:
        self._url = url
        self._data = data
        self._timeout = timeout
        self._lock = threading.Lock()
        self._abandoned = False
        self._sockets: list[socket.socket] = []  # duplicates of the connections' sockets
        self.finished = threading.Event()
        self.status: int | None = None  # the HTTP status, once the answer's head has arrived
        self.retry_after: str | None = None  # the answer's Retry-After header, if it had one
        self.error: Exception | None = None  # why the exchange failed before any status

    def run(self) -> None:
        """Send the request, record the status and read at most a few KiB of the body."""
        try:
            opener = urllib.request.build_opener(
                NoRedirect, TrackedHTTPHandler(self), TrackedHTTPSHandler(self)
            )
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(self._url, self._data, headers, method="POST")
            with opener.open(request, timeout=self._timeout) as response:
                self.retry_after = response.headers.get("Retry-After")
                self.status = response.status
                remaining = RESPONSE_LIMIT
                while remaining > 0 and (chunk := response.read1(remaining)):
                    remaining -= len(chunk)
        except urllib.error.HTTPError as exc:
            self.retry_after = exc.headers.get("Retry-After")
            self.status = exc.code
            exc.close()
        except Exception as exc:  # everything: the worker must always report back
            self.error = exc
        finally:
            self.finished.set()
            self.abandon()

    def abandon(self) -> None:
        """Shut down every connection this delivery opened and refuse to open another."""
        with self._lock:
            self._abandoned = True
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def connection(self, http_class: type[http.client.HTTPConnection]) -> Callable[..., Any]:
        """A factory for ``http_class`` connections whose sockets :meth:`abandon` can reach."""

        def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            connection = http_class(host, **kwargs)
            # http.client opens its socket through this private hook
            connection._create_connection = self._connect  # type: ignore[attr-defined]
            return connection

        return make

    def _connect(
        self, address: tuple[str, int], timeout: float, source_address: tuple[str, int] | None = None
    ) -> socket.socket:
        """Open a TCP connection and keep a duplicate of it: the duplicate outlives the TLS
        wrapping (which detaches the original object) and shuts the same connection down."""
        sock = socket.create_connection(address, timeout, source_address)
        with self._lock:
            if self._abandoned:  # the dispatcher gave up while DNS or connect was still running
                sock.close()
                raise TimeoutError("deadline passed before the connection opened")
            self._sockets.append(sock.dup())
        return sock


class TrackedHTTPHandler(urllib.request.HTTPHandler):
    """urllib's HTTP handler, opening connections through a :class:`Delivery`."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self._delivery = delivery

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        """Open ``req`` on a connection the delivery can shut down."""
        return super().do_open(self._delivery.connection(http_class), req, **kwargs)


class TrackedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler (default TLS context), opening connections through a :class:`Delivery`."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self._delivery = delivery

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        """Open ``req`` on a connection the delivery can shut down."""
        return super().do_open(self._delivery.connection(http_class), req, **kwargs)


RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` header is honoured (RFC 9110 gives it meaning on 503, RFC 6585 on 429)."""

MAX_BACKOFF = 60.0
"""Seconds of backoff at most before jitter, however many attempts were made."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What one POST got.

    Attributes:
        limit: Seconds the attempt was given (the per-attempt timeout, or less when the total
            deadline was nearer).
        status: The HTTP status, or ``None`` when no answer's head arrived.
        error: What stopped the exchange before any status (``None`` with a status or a timeout).
        timed_out: True when no answer came within ``limit``.
        retry_after: Seconds a 429 or 503 answer asked to wait before the next attempt, if it said.
    """

    limit: float
    status: int | None = None
    error: Exception | None = None
    timed_out: bool = False
    retry_after: float | None = None

    @property
    def cause(self) -> object:
        """The exception behind urllib's ``URLError`` wrapper around :attr:`error` (or ``error``)."""
        return _reason(self.error)

    @property
    def delivered(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Whether repeating the POST may succeed: a 5xx, a 429, no answer in time or a broken
        connection (refused, reset, closed before any answer, a failed DNS lookup). Another 4xx, a
        redirect (never followed) or a garbled answer would only be repeated by the server."""
        if self.status is not None:
            return self.status == 429 or 500 <= self.status < 600
        return self.timed_out or isinstance(self.cause, (ConnectionError, socket.gaierror))


@dataclasses.dataclass(frozen=True)
class Exchange:
    """Every attempt at one delivery, in order, and why retrying stopped short, if it did.

    Attributes:
        attempts: The attempts made (at least one).
        stopped: Why no further attempt was made although the last one could be retried and
            attempts were left (the deadline, or a ``Retry-After`` beyond it); ``None`` otherwise.
    """

    attempts: tuple[Attempt, ...]
    stopped: str | None = None

    @property
    def last(self) -> Attempt:
        """The final attempt: its answer is the delivery's."""
        return self.attempts[-1]


def exchange(
    url: str,
    data: bytes,
    *,
    timeout: float,
    deadline: float,
    attempts: int,
    backoff: float,
    draw: Callable[[], float],
    thread_name: str,
) -> Exchange:
    """POST ``data`` to ``url`` until a final answer, ``attempts`` tries or ``deadline`` seconds.

    Each attempt gets ``timeout`` seconds, or what is left of ``deadline`` if that is less. Between
    attempts it waits :func:`backoff_delay`, or longer when a 429 or 503 asked for it with
    ``Retry-After``; when that wait would reach the deadline it stops and says why, rather than
    make an attempt the deadline would cut short.

    Args:
        url: The webhook URL (a secret: it appears in no exception or text made here).
        data: The request body (JSON).
        timeout: Seconds one attempt may take, > 0.
        deadline: Seconds all attempts and waits together may take, > 0.
        attempts: Attempts at most, >= 1.
        backoff: Seconds of the first backoff before jitter; each later one doubles.
        draw: A uniform draw from [0, 1) for the jitter (``random.random``; tests pass their own).
        thread_name: Name of the worker threads (safe to show: no URL in it).
    """
    ends = time.monotonic() + deadline
    made: list[Attempt] = []
    while True:
        attempt = _attempt(url, data, min(timeout, ends - time.monotonic()), thread_name)
        made.append(attempt)
        if attempt.delivered or not attempt.retryable or len(made) == attempts:
            return Exchange(tuple(made))
        wait = max(backoff_delay(len(made), backoff, draw()), attempt.retry_after or 0.0)
        left = ends - time.monotonic()
        if wait >= left:
            return Exchange(tuple(made), _stop_reason(attempt.retry_after, left, deadline))
        time.sleep(wait)


def backoff_delay(retry: int, base: float, draw: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the second attempt): "full jitter".

    ``delay = draw * min(MAX_BACKOFF, base * 2 ** (retry - 1))`` with ``draw`` uniform on [0, 1):
    exponential backoff spreads retries out in time and the jitter keeps clients that failed
    together from retrying together (Brooker, "Exponential Backoff And Jitter", AWS Architecture
    Blog, 2015).

    Examples:
        >>> backoff_delay(1, 0.5, 0.5), backoff_delay(3, 0.5, 0.5), backoff_delay(40, 0.5, 0.999)
        (0.25, 1.0, 59.94)
    """
    return draw * min(MAX_BACKOFF, base * 2.0 ** min(retry - 1, 64))


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, from delta-seconds or an HTTP-date.

    A date in the past means no wait; a value that is neither form is ignored (``None``), as
    RFC 9110 (section 10.2.3) leaves it, and the backoff applies instead.

    Examples:
        >>> now = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.timezone.utc)
        >>> retry_after_seconds("120", now), retry_after_seconds("Mon, 05 Jan 2026 12:00:30 GMT", now)
        (120.0, 30.0)
        >>> retry_after_seconds("Mon, 05 Jan 2026 11:00:00 GMT", now), retry_after_seconds("soon", now)
        (0.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)  # a huge number of digits is inf: longer than any deadline
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; some servers leave the zone out
        when = when.replace(tzinfo=dt.timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def _attempt(url: str, data: bytes, limit: float, thread_name: str) -> Attempt:
    """One POST on a worker thread, abandoned after ``limit`` seconds."""
    limit = max(limit, 0.0)
    if limit == 0.0:
        return Attempt(limit, timed_out=True)
    delivery = Delivery(url, data, limit)
    threading.Thread(target=delivery.run, name=thread_name, daemon=True).start()
    finished = delivery.finished.wait(limit)
    delivery.abandon()
    status = delivery.status
    if status is not None:
        asked = retry_after_seconds(delivery.retry_after, dt.datetime.now(dt.timezone.utc))
        return Attempt(limit, status, retry_after=asked if status in RETRY_AFTER_STATUSES else None)
    if not finished or isinstance(_reason(delivery.error), TimeoutError):
        # the worker's socket timeout and this wait are the same length: either may end a stall first
        return Attempt(limit, timed_out=True)
    return Attempt(limit, error=delivery.error)


def _reason(error: Exception | None) -> object:
    """The exception behind urllib's ``URLError`` wrapper (or ``error`` itself)."""
    return error.reason if isinstance(error, urllib.error.URLError) else error


def _stop_reason(retry_after: float | None, left: float, deadline: float) -> str:
    """Why no further attempt fits in the deadline (the text names no URL)."""
    left = max(left, 0.0)
    if retry_after is not None and retry_after >= left:
        asked = "an unbounded time" if math.isinf(retry_after) else f"{retry_after:g} s"
        return f"Retry-After asked for {asked}, more than the {left:.1f} s left before the deadline"
    return f"the {deadline:g} s deadline left no time for another attempt"
