"""Shared fixtures: a small exposure log, a counter of queries sent to any Ibis backend, and the real
PostgreSQL server and Spark session the backend tests run on.

Property tests draw their examples deterministically (Hypothesis' ``derandomize``): a run is
reproducible, so CI on a clean checkout and a developer's run see the same examples, and a red run
means the code changed. ``XPYRMENT_HYPOTHESIS=explore pytest`` draws new examples each run.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

import xpyrment_sql as xs
from xpyrment_sql.synthetic import write_exposure_log

from backends import READER, experiment_log, load_postgres, spark_session
from postgres_server import PostgresServer, running_server

settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("XPYRMENT_HYPOTHESIS", "deterministic"))


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; requests to servers on 127.0.0.1 must go direct."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def query_log() -> Iterator[list[str]]:
    """Every SQL statement the backends execute while the test runs (Ibis' verbose log)."""
    statements: list[str] = []
    previous = (ibis.options.verbose, ibis.options.verbose_log)
    ibis.options.verbose = True
    ibis.options.verbose_log = statements.append
    try:
        yield statements
    finally:
        ibis.options.verbose, ibis.options.verbose_log = previous


def make_log(
    units: int = 400,
    rows: int = 3000,
    days: int = 5,
    variants: tuple[str, ...] = ("control", "treatment"),
    seed: int = 0,
) -> pd.DataFrame:
    """A random exposure log: returning units, each in one variant, timestamps to the second."""
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, rows)
    seconds = rng.integers(0, days * 86_400, rows)
    return pd.DataFrame(
        {
            "unit_id": unit,
            "variant": np.asarray(variants)[unit % len(variants)],
            "ts": pd.Timestamp("2026-01-05") + pd.to_timedelta(seconds, unit="s"),
        }
    )


@pytest.fixture
def log() -> pd.DataFrame:
    """A two-arm log of 3,000 rows over 5 days."""
    return make_log()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (a missing server fails, never skips)."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_reader(postgres_server: PostgresServer) -> tuple[str, str]:
    """The experiment log as ``public.exposures``, and a (user, password) that may only SELECT it."""
    password = secrets.token_urlsafe(12)
    load_postgres(postgres_server, experiment_log(), password)
    return READER, password


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local two-core SparkSession for the whole session (a missing JVM fails, never skips)."""
    with spark_session() as session:
        yield session


@pytest.fixture(scope="session")
def broken_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Parquet log whose treatment units are lost from a quarter of the span on: both SRM tests fire."""
    path = tmp_path_factory.mktemp("broken") / "broken.parquet"
    write_exposure_log(
        path, rows=40_000, days=2, rows_per_unit=1.5, diurnal=False, seed=5,
        srm={"arm": "treatment", "keep": 0.5, "after": 0.25},
    )  # fmt: skip
    return str(path)


def latency_guardrails() -> list[xs.GuardrailMetric]:
    """One guardrail on the synthetic log's ``value`` column: latency must not rise by 2%."""
    return [xs.GuardrailMetric(xs.MeanMetric("latency", "value"), 0.02, direction="increase")]


class RecordingWebhook(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 keeping ``(path, JSON body)`` of every POST in ``bodies``.

    It answers 200, or the next answer queued with :meth:`queue` (a status and headers, e.g. a 500,
    or a 429 with ``Retry-After``); ``arrivals`` holds each request's ``time.monotonic()``.
    """

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.arrivals: list[float] = []
        self.answers: deque[tuple[int, tuple[tuple[str, str], ...]]] = deque()
        super().__init__(("127.0.0.1", 0), _RecordingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_port}"

    def queue(self, status: int, *headers: tuple[str, str]) -> None:
        """Answer the next request not yet answered by a queued answer with ``status`` and ``headers``."""
        self.answers.append((status, headers))


class _RecordingHandler(BaseHTTPRequestHandler):
    server: RecordingWebhook

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.arrivals.append(time.monotonic())
        self.server.bodies.append((self.path, json.loads(self.rfile.read(length))))
        status, headers = self.server.answers.popleft() if self.server.answers else (200, ())
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[RecordingWebhook]:
    """A :class:`RecordingWebhook` serving for the test."""
    server = RecordingWebhook()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
