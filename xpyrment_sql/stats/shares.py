"""Per-bin shares of each arm against the designed split, with a binomial band, for charts.

Each unit's first exposure is one draw from the randomiser, so among the ``n_t`` units first seen in
bin ``t`` the count in arm ``i`` is ``Binomial(n_t, p_i)`` when the split is as designed. Its share
``s_ti = n_ti / n_t`` then lies within

    p_i +- w * sqrt(p_i (1 - p_i) / n_t)

(``w = 3`` standard errors) in all but about 0.3% of bins; a step change in assignment shows as
shares leaving the band from some bin on. Bins with ``n_t = 0`` have no share and no band (NaN).
"""

from __future__ import annotations

import numpy as np

from xpyrment_sql.errors import ParameterError


def observed_shares(counts: np.ndarray) -> np.ndarray:
    """``s_ti = n_ti / sum_j n_tj`` for a bins x arms count matrix; NaN in bins without units.

    Examples:
        >>> observed_shares(np.array([[30, 70], [0, 0]]))
        array([[0.3, 0.7],
               [nan, nan]])
    """
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares: np.ndarray = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
    return shares


def share_band(
    shares: np.ndarray, bin_totals: np.ndarray, width: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges ``p_i -+ width * sqrt(p_i (1 - p_i) / n_t)``, each bins x arms.

    Args:
        shares: Designed share ``p_i`` of each arm.
        bin_totals: Units ``n_t`` in each bin (the binomial sample size); bins with none get NaN.
        width: Half-width of the band in binomial standard errors.

    Raises:
        ParameterError: if ``width`` is not a positive finite number.
    """
    if isinstance(width, bool) or not (isinstance(width, (int, float, np.number)) and 0 < width < np.inf):
        raise ParameterError(f"width={width!r} must be a positive finite number of standard errors")
    p = np.asarray(shares, dtype=float)[np.newaxis, :]
    n = np.asarray(bin_totals, dtype=float)[:, np.newaxis]
    variance = np.divide(p * (1 - p), n, out=np.full((n.shape[0], p.shape[1]), np.nan), where=n > 0)
    half = width * np.sqrt(variance)
    return p - half, p + half
