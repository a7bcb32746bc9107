"""The scipy.special distribution functions equal the scipy.stats methods they replace, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from xpyrment_sql.stats import distributions as dist
from xpyrment_sql.stats import seasonal

RNG = np.random.default_rng(20260105)
X = np.concatenate([[0.0, 1e-300, 0.5, 1.0, 3.5, 8.0, 40.0, np.inf, np.nan], RNG.normal(0, 3, 2_000)])
Q = np.concatenate([[1e-300, 1e-12, 0.001, 0.025, 0.5, 0.975, 1 - 1e-12], RNG.uniform(0, 1, 2_000)])
DF = np.concatenate([[1.0, 2.0, 7.5, 1e6, np.nan], np.exp(RNG.uniform(0, 12, 2_000))])


def same(actual: object, expected: object) -> None:
    np.testing.assert_array_equal(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float))


def test_normal_functions_are_scipy_stats_norm():
    same(dist.normal_cdf(X), stats.norm.cdf(X))
    same(dist.normal_sf(np.abs(X)), stats.norm.sf(np.abs(X)))
    same(dist.normal_ppf(Q), stats.norm.ppf(Q))


def test_t_functions_are_scipy_stats_t():
    x, q = np.abs(X[: DF.size]), Q[: DF.size]
    same(dist.t_sf(x, DF), stats.t.sf(x, DF))
    same(dist.t_ppf(q, DF), stats.t.ppf(q, DF))


@pytest.mark.parametrize("df", [0, 1, 2, 5, 30])
def test_chi2_sf_is_scipy_stats_chi2_sf_also_without_degrees_of_freedom(df):
    x = np.concatenate([[0.0, np.inf, np.nan], RNG.exponential(10, 500)])
    same(dist.chi2_sf(x, df), stats.chi2.sf(x, df))


@pytest.mark.parametrize("arms", [2, 3, 6])
def test_pearson_chi_square_is_scipy_stats_chisquare(arms):
    for _ in range(200):
        observed = RNG.integers(0, 10**9, arms).astype(float)
        shares = RNG.uniform(0.1, 1, arms)
        expected = observed.sum() * shares / shares.sum()
        statistic, p_value = stats.chisquare(f_obs=observed, f_exp=expected)
        assert dist.pearson_chi_square(observed, expected) == (float(statistic), float(p_value))


def test_nbinom_log_tails_are_scipy_stats_nbinom():
    mean = np.exp(RNG.uniform(np.log(0.5), np.log(1e8), 20_000))
    variance = mean * np.exp(RNG.uniform(1e-6, np.log(60), mean.size))
    size, success = mean**2 / (variance - mean), mean / variance
    count = np.floor(np.maximum(mean + RNG.normal(0, 4, mean.size) * np.sqrt(variance), 0))
    count[::9] = 0
    same(dist.nbinom_logcdf(count, size, success), stats.nbinom.logcdf(count, size, success))
    same(dist.nbinom_logsf(count, size, success), stats.nbinom.logsf(count, size, success))


def test_the_seasonal_constants_are_what_scipy_computes():
    t = seasonal.TRUNCATION
    assert float(stats.chi2(1).median()) == seasonal._CHI2_MEDIAN
    truncated = 1.0 - 2 * t * stats.norm.pdf(t) / (2 * stats.norm.cdf(t) - 1)
    assert float(truncated) == seasonal._TRUNCATED_VARIANCE


def test_seasonal_scores_are_the_normal_scores_of_scipy_stats_nbinom_tails():
    """The formula ``seasonal_scores`` had when it called ``scipy.stats``, kept as the reference."""
    expected = np.exp(RNG.uniform(np.log(0.5), np.log(1e7), 5_000))
    variance = expected * np.exp(RNG.uniform(1e-6, np.log(30), expected.size))
    observed = np.floor(expected * RNG.uniform(0, 2, expected.size))
    expected[:50] = 0.0
    size, success = expected**2 / (variance - expected), expected / variance
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = special.ndtri_exp(np.minimum(stats.nbinom.logcdf(observed, size, success), 0.0))
        upper = -special.ndtri_exp(np.minimum(stats.nbinom.logsf(observed, size, success), 0.0))
    reference = np.clip(np.where(observed < expected, lower, upper), -seasonal.MAX_SCORE, seasonal.MAX_SCORE)
    reference[:50] = 0.0
    same(seasonal.seasonal_scores(observed, expected, variance), reference)
