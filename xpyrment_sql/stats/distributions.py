"""The distribution functions the checks need, from ``scipy.special``, without ``scipy.stats``.

Importing ``scipy.stats`` takes about half a second, more than pandas, and an hourly monitor run pays it
for a few tail probabilities. Each function here calls the ``scipy.special`` ufunc that the matching
``scipy.stats`` method calls for the parameters the checks pass, so the numbers are the same to the
last bit (``tests/stats/test_distributions.py`` compares them), and ``scipy.special`` itself (about
0.2 s) is imported on first use, so importing the package loads no scipy at all.

The one exception is :func:`nbinom_logsf`: ``scipy.special`` has no public function computing
the negative binomial survival function the way ``scipy.stats.nbinom`` does (``betaincc`` promotes to
long double and differs in the last bits), so it imports ``scipy.stats`` when called.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt


def _special() -> ModuleType:
    """``scipy.special``, imported on the first call rather than with the package (about 0.2 s)."""
    return importlib.import_module("scipy.special")


def normal_cdf(x: npt.ArrayLike) -> Any:
    """``Phi(x)``, as ``scipy.stats.norm.cdf``.

    Examples:
        >>> float(normal_cdf(0.0))
        0.5
    """
    return _special().ndtr(x)


def normal_sf(x: npt.ArrayLike) -> Any:
    """``1 - Phi(x)`` without cancellation, as ``scipy.stats.norm.sf``."""
    return _special().ndtr(np.negative(x))


def normal_ppf(q: npt.ArrayLike) -> Any:
    """``Phi^-1(q)``, as ``scipy.stats.norm.ppf``.

    Examples:
        >>> round(float(normal_ppf(0.975)), 6)
        1.959964
    """
    return _special().ndtri(q)


def normal_ppf_of_log(log_q: npt.ArrayLike) -> Any:
    """``Phi^-1(exp(log_q))``, accurate when ``exp(log_q)`` would underflow (``scipy.special.ndtri_exp``)."""
    return _special().ndtri_exp(log_q)


def t_sf(x: npt.ArrayLike, df: npt.ArrayLike) -> Any:
    """Upper tail of Student's t with ``df`` degrees of freedom, as ``scipy.stats.t.sf``.

    NaN when ``df`` is NaN (``scipy.special.stdtr`` returns NaN there as ``scipy.stats`` does).
    """
    return _special().stdtr(df, np.negative(x))


def t_ppf(q: npt.ArrayLike, df: npt.ArrayLike) -> Any:
    """``q``-quantile of Student's t with ``df`` degrees of freedom, as ``scipy.stats.t.ppf``.

    Examples:
        >>> round(float(t_ppf(0.975, 10)), 6)
        2.228139
    """
    return _special().stdtrit(df, q)


def chi2_sf(x: npt.ArrayLike, df: npt.ArrayLike) -> Any:
    """Upper tail of the chi-square law with ``df`` degrees of freedom, as ``scipy.stats.chi2.sf``.

    NaN for ``df <= 0``, as in ``scipy.stats`` (``scipy.special.chdtrc`` returns 0 or 1 there).

    Examples:
        >>> round(float(chi2_sf(3.841458820694124, 1)), 6)
        0.05
    """
    df = np.asarray(df, dtype=float)
    return np.where(df > 0, _special().chdtrc(np.where(df > 0, df, 1.0), x), np.nan)


def pearson_chi_square(observed: npt.ArrayLike, expected: npt.ArrayLike) -> tuple[float, float]:
    """Pearson's ``X^2 = sum (O - E)^2 / E`` on ``k - 1`` degrees of freedom and its p-value.

    The computation of ``scipy.stats.chisquare(observed, expected)``, for a 1-d ``observed`` of at
    least two counts and an ``expected`` with the same total.

    Examples:
        >>> pearson_chi_square([5_000, 5_300], [5_150, 5_150])
        (8.737864077669903, 0.003116693839866867)
    """
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    statistic = np.sum((observed - expected) ** 2 / expected)
    return float(statistic), float(_special().chdtrc(observed.size - 1, statistic))


def log_gamma(x: npt.ArrayLike) -> Any:
    """``log |Gamma(x)|`` elementwise (``scipy.special.gammaln``)."""
    return _special().gammaln(x)


def nbinom_logcdf(k: npt.ArrayLike, n: npt.ArrayLike, p: npt.ArrayLike) -> np.ndarray:
    """``log P(X <= k)`` for ``X`` negative binomial (``n`` successes, success probability ``p``).

    As ``scipy.stats.nbinom.logcdf`` for ``k >= 0``, ``n > 0`` and ``0 < p <= 1``: the CDF is the
    regularized incomplete beta ``I_p(n, k + 1)``, and above 0.5 its log is taken from the upper tail
    ``I_{1-p}(k + 1, n)`` with ``log1p`` so that it does not round to 0.
    """
    special = _special()
    k, n, p = np.broadcast_arrays(np.floor(np.asarray(k, dtype=float)), np.asarray(n, dtype=float), p)
    cdf = np.asarray(special.betainc(n, k + 1, p), dtype=float)
    high = cdf > 0.5
    log_cdf = np.empty_like(cdf)
    with np.errstate(divide="ignore"):
        log_cdf[~high] = np.log(cdf[~high])
        log_cdf[high] = np.log1p(-special.betainc(k[high] + 1, n[high], 1 - p[high]))
    return log_cdf


def nbinom_logsf(k: npt.ArrayLike, n: npt.ArrayLike, p: npt.ArrayLike) -> np.ndarray:
    """``log P(X > k)`` for ``X`` negative binomial: ``scipy.stats.nbinom.logsf``, imported here.

    ``scipy.special`` offers no public ufunc equal to it to the last bit (module docstring), so the
    callers evaluate it only where they need the upper tail.
    """
    from scipy import stats  # about 0.5 s: only when an upper tail is asked for

    log_sf: np.ndarray = np.asarray(stats.nbinom.logsf(k, n, p), dtype=float)
    return log_sf
