"""Assembling the bins x variants traffic matrix from the long counts the backend returns.

The backend returns one row per non-empty (bin key, variant); this module places them on the full
grid of consecutive bin keys, so bins without traffic appear as zeros instead of vanishing, and marks
whether the last bin is complete at the evaluation instant.

Live semantics: the evaluation instant is ``until`` when one is given, else the latest exposure. A
bin is complete when the instant is at or past its end. With ``until``, the bins run up to the one
holding ``until``; a bin that starts exactly at ``until`` does not exist (the bin before it is then
the last, and complete). Without ``until``, the last bin holds the latest exposure, which lies before
that bin's end, so it is always unfinished.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xpyrment_sql.bins import BinSpec, as_utc
from xpyrment_sql.errors import DataError
from xpyrment_sql.results import TrafficMatrix, frozen_array

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
