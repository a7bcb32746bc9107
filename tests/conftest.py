"""Shared fixtures: a small exposure log and a counter of queries sent to any Ibis backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))


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
