"""Assembling the bins x variants traffic matrix from the long counts the backend returns.

The backend returns one row per non-empty (bin key, variant); this module places them on the full
grid of consecutive bin keys, so bins without traffic appear as zeros instead of vanishing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xpyrment_sql.bins import BinSpec
from xpyrment_sql.results import TrafficMatrix, frozen_array


def traffic_matrix(
    counts: pd.DataFrame, bins: BinSpec, variant_col: str, last_key: int | None = None
) -> TrafficMatrix:
    """Build the matrix from ``counts`` (columns ``bin``, ``variant``, ``active``, ``new``).

    Args:
        counts: One row per non-empty (bin key, variant).
        bins: How keys map to bin start times.
        variant_col: Name of the variant column, kept for labelling.
        last_key: Key of the last bin to show (the bin of ``until``); bins up to it are included
            even when empty, so an outage that is still going on is visible.
    """
    variants = tuple(sorted(pd.unique(counts["variant"]).tolist()))
    if counts.empty:
        empty = frozen_array(np.zeros((0, 0), dtype=np.int64))
        return TrafficMatrix(
            bins.labels(np.array([], dtype=np.int64)), (), empty, empty, bins.freq, variant_col
        )
    keys = counts["bin"].to_numpy(dtype=np.int64)
    first = int(keys.min())
    last = int(keys.max()) if last_key is None else max(int(keys.max()), last_key)
    row = keys - first
    column = pd.Index(variants).get_indexer(counts["variant"])
    shape = (last - first + 1, len(variants))
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
    )
