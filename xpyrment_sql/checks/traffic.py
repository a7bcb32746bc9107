"""The traffic matrix check: one query for distinct units per bin and variant, placed on the full grid.

:func:`matrix_query` plans the query (time chunks from the source's span, a row cap, and, for the seed's
SPRT, the window that finds its first crossing); :func:`fetch_matrix` runs it through
``Source.execute`` and places the one row per non-empty (bin key, variant) the backend returns on the
full grid of consecutive bin keys, so bins without traffic appear as zeros instead of vanishing, and
marks whether the last bin is complete at the evaluation instant.

Live semantics: the evaluation instant is ``until`` when one is given, else the latest exposure. A
bin is complete when the instant is at or past its end. With ``until``, the bins run up to the one
holding ``until``; a bin that starts exactly at ``until`` does not exist (the bin before it is then
the last, and complete). Without ``until``, the last bin holds the latest exposure, which lies before
that bin's end, so it is always unfinished.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.bins import BinSpec, Chunk, as_utc, time_chunks
from xpyrment_sql.checks.srm import SprtCrossings, sprt_query
from xpyrment_sql.errors import DataError
from xpyrment_sql.results import TrafficMatrix, frozen_array
from xpyrment_sql.source import Source

MAX_MATRIX_CELLS = 5_000_000
"""Largest bins x variants matrix built (two int64 matrices of 40 MB each). Past it, a wrong column
(a variant column of ids, timestamps decades apart at minute bins) is refused with an error instead
of exhausting memory."""


def last_bin(bins: BinSpec, until: pd.Timestamp) -> tuple[int, bool]:
    """Key of the last bin that exists at ``until``, and whether that bin is still unfinished.

    The bin holding ``until`` is unfinished unless it starts exactly at ``until``; then it does not
    exist yet, and the bin before it, which ended at ``until``, is the last and complete.
    """
    key = bins.key_of(until)
    if bin_start(bins, key) == as_utc(until):
        return key - 1, False
    return key, True


def bin_start(bins: BinSpec, key: int) -> pd.Timestamp:
    """The instant (aware UTC) at which bin ``key`` starts."""
    return as_utc(bins.labels(np.array([key]))[0])


def traffic_matrix(
    counts: pd.DataFrame,
    bins: BinSpec,
    variant_col: str,
    until: pd.Timestamp | None = None,
) -> TrafficMatrix:
    """Build the matrix from ``counts`` (columns ``bin``, ``variant``, ``active``, ``new``).

    Args:
        counts: One row per non-empty (bin key, variant).
        bins: How keys map to bin start times.
        variant_col: Name of the variant column, kept for labelling.
        until: The evaluation instant, if given: bins up to the last one that exists at ``until`` are
            included even when empty, so an outage that is still going on is visible.

    Raises:
        DataError: the matrix would exceed :data:`MAX_MATRIX_CELLS` cells.
    """
    variants = tuple(sorted(pd.unique(counts["variant"]).tolist()))
    evaluated_at = as_utc(until) if until is not None else None
    if counts.empty:
        empty = frozen_array(np.zeros((0, 0), dtype=np.int64))
        return TrafficMatrix(
            bins.labels(np.array([], dtype=np.int64)),
            (),
            empty,
            empty,
            bins.freq,
            variant_col,
            evaluated_at=evaluated_at,
        )
    keys = counts["bin"].to_numpy(dtype=np.int64)
    first = int(keys.min())
    if until is None:
        last, unfinished = int(keys.max()), True
    else:
        last, unfinished = last_bin(bins, until)
        last = max(int(keys.max()), last)
    shape = (last - first + 1, len(variants))
    check_matrix_size(shape, bins, first, last)
    row = keys - first
    column = pd.Index(variants).get_indexer(counts["variant"])
    active = np.zeros(shape, dtype=np.int64)
    new = np.zeros(shape, dtype=np.int64)
    active[row, column] = counts["active"].to_numpy(dtype=np.int64)
    new[row, column] = counts["new"].to_numpy(dtype=np.int64)
    return TrafficMatrix(
        bins=bins.labels(np.arange(first, last + 1)),
        variants=variants,
        active=frozen_array(active),
        new=frozen_array(new),
        freq=bins.freq,
        variant_col=variant_col,
        first_key=first,
        unfinished=unfinished,
        evaluated_at=evaluated_at,
    )


def check_matrix_size(shape: tuple[int, int], bins: BinSpec, first: int, last: int) -> None:
    """Refuse a matrix of more than :data:`MAX_MATRIX_CELLS` cells, naming what made it so large."""
    cells = shape[0] * shape[1]
    if cells <= MAX_MATRIX_CELLS:
        return
    raise DataError(
        f"the traffic matrix would have {shape[0]:,} bins of freq={bins.freq!r} x {shape[1]:,} variants "
        f"= {cells:,} cells, more than {MAX_MATRIX_CELLS:,}: exposures run from "
        f"{bin_start(bins, first)} to {bin_start(bins, last)}. Check that time_col and variant_col are "
        "the right columns (and that no timestamps lie far in the past or future), or use a larger freq"
    )


def matrix_query(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    exact: bool = True,
    sprt: queries.SprtSpec | None = None,
    exposure: bool = False,
) -> ir.Table:
    """The traffic matrix query, exactly as it runs (and as ``xpyrment-sql sql`` prints it).

    On a Parquet log whose span is known from its footers, exact active counts deduplicate one time
    chunk at a time (``bins.time_chunks``); at most ``MAX_MATRIX_CELLS + 1`` rows come back. With
    ``exposure``, the multiple-exposure events come back from the same query.
    """
    chunks = chunks_for(source, bins, until) if exact else ((None, None),)
    return queries.traffic_counts(
        source, variant_col, bins, until, chunks, exact, sprt, max_rows=MAX_MATRIX_CELLS, exposure=exposure
    )


def chunks_for(source: Source, bins: BinSpec, until: pd.Timestamp | None) -> tuple[Chunk, ...]:
    """Time chunks to deduplicate active units in, from the span the Parquet footers give (one chunk
    when the span is unknown)."""
    span = source.span
    if span is None:
        return ((None, None),)
    last = span.last if until is None else min(span.last, until)
    return tuple(time_chunks(bins, span.first, max(last, span.first), span.rows))


def fetch_counts(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    exact: bool = True,
    sprt: queries.SprtSpec | None = None,
    exposure: bool = False,
) -> pd.DataFrame:
    """Run :func:`matrix_query` and check what came back (one query).

    Raises:
        DataError: timestamps that cannot be binned, or a matrix past :data:`MAX_MATRIX_CELLS`.
        BackendError: the SPRT's window on a backend without window functions.
    """
    purpose = "the traffic matrix"
    if sprt is not None:
        purpose = (
            "the traffic matrix with the SPRT's first crossing "
            "(check_sequential_srm, or sequential_method='sprt')"
        )
        source.require_window_functions(purpose)
    counts = source.execute(matrix_query(source, variant_col, bins, until, exact, sprt, exposure), purpose)
    check_counts(counts, source, variant_col, bins)
    return counts


def check_counts(counts: pd.DataFrame, source: Source, variant_col: str, bins: BinSpec) -> None:
    """Refuse counts with unbinnable timestamps, or more rows than :data:`MAX_MATRIX_CELLS`.

    Raises:
        DataError: naming the column to check.
    """
    if counts["bin"].isna().any():
        raise DataError(
            f"time_col={source.time_col!r} holds timestamps the backend cannot place in a bin "
            "(infinity, or outside the range of epoch seconds); filter them out of the data"
        )
    if len(counts) > MAX_MATRIX_CELLS:
        raise DataError(
            f"the traffic matrix has more than {MAX_MATRIX_CELLS:,} non-empty (bin, variant) cells "
            f"at freq={bins.freq!r}: check that variant_col={variant_col!r} holds the arms (not ids) "
            "and time_col the exposure times, or use a larger freq"
        )


def matrix_rows(counts: pd.DataFrame) -> pd.DataFrame:
    """The ``"matrix"`` part of the counts (one row per non-empty bin and variant)."""
    return counts[counts["part"] == "matrix"]


def fetch_matrix(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    exact: bool = True,
    sprt_shares: Sequence[float] = (),
    sprt_delta: float = 0.02,
    sprt_alpha: float = 0.01,
) -> tuple[TrafficMatrix, SprtCrossings | None]:
    """The traffic matrix and, given two-arm ``sprt_shares``, the SPRT's first crossings: one query.

    Raises:
        DataError: timestamps that cannot be binned, or a matrix past :data:`MAX_MATRIX_CELLS`.
        BackendError: the SPRT's window on a backend without window functions.
    """
    sprt = sprt_query(sprt_shares, sprt_delta, sprt_alpha)
    counts = matrix_rows(fetch_counts(source, variant_col, bins, until, exact, sprt))
    matrix = traffic_matrix(counts, bins, variant_col, until)
    crossings = SprtCrossings.from_counts(counts, sprt_shares) if sprt is not None else None
    return matrix, crossings
