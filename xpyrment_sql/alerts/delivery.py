"""One webhook POST within a total deadline: the HTTP side of :mod:`xpyrment_sql.alerts.dispatcher`.

Kept apart from the dispatcher because ``urllib.request`` brings ``http.client`` and ``ssl`` (about
70 ms to import): the dispatcher imports this module when it first posts to a webhook, so a run that
sends no alert never loads them.
"""

from __future__ import annotations

import email.message
import http.client
import socket
import threading
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
                self.status = response.status
                remaining = RESPONSE_LIMIT
                while remaining > 0 and (chunk := response.read1(remaining)):
                    remaining -= len(chunk)
        except urllib.error.HTTPError as exc:
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
