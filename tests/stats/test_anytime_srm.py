"""The anytime-valid SRM test (Dirichlet-multinomial mixture), its gates, and its place in the telemetry."""

from __future__ import annotations

import decimal
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import xpyrment_sql as xs
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.reporting.text import format_report
from xpyrment_sql.results import AnytimeSRMResult, SequentialSRMResult
from xpyrment_sql.stats.srm import (
    anytime_log_bayes_factors,
    anytime_p_values,
    anytime_srm,
    chi_square_srm,
)

from conftest import make_log


def direct_log_bf(counts, shares, c) -> float:
    """The formula written out with math.lgamma, one arm at a time."""
    total = sum(counts)
    value = math.lgamma(c) - math.lgamma(c + total)
    for n, p in zip(counts, shares, strict=True):
        value += math.lgamma(c * p + n) - math.lgamma(c * p) - n * math.log(p)
    return value


@pytest.mark.parametrize(
    ("counts", "shares", "c"),
    [
        ([5_123, 4_877], [0.5, 0.5], 10_000.0),
        ([120, 0, 87], [0.25, 0.25, 0.5], 50.0),
        ([90_210, 9_790], [0.9, 0.1], 3_000.0),
        ([0, 0], [0.5, 0.5], 10.0),
    ],
)
def test_log_bayes_factor_equals_the_formula_written_out(counts, shares, c):
    got = anytime_log_bayes_factors(np.array(counts), np.array(shares), c)
    assert got == pytest.approx(direct_log_bf(counts, shares, c), rel=1e-10, abs=1e-9)


@pytest.mark.parametrize(
    ("counts", "shares"), [([3, 1, 2], [0.2, 0.3, 0.5]), ([0, 4, 1], [1 / 3, 1 / 3, 1 / 3])]
)
def test_tiny_counts_equal_the_dirichlet_multinomial_over_multinomial_pmf(counts, shares):
    c = 2.5
    alpha = c * np.asarray(shares)
    ratio = stats.dirichlet_multinomial.pmf(counts, alpha, sum(counts)) / stats.multinomial.pmf(
        counts, sum(counts), shares
    )
    got = anytime_log_bayes_factors(np.array(counts), np.array(shares), c)
    assert math.exp(got) == pytest.approx(ratio, rel=1e-10)


def test_two_arms_equal_the_beta_integral_of_the_binomial_likelihood_ratio():
    """BF = integral of (p/p0)^k ((1-p)/(1-p0))^(n-k) over the Beta(c p0, c (1-p0)) prior."""
    k, n, p0, c = 37, 60, 0.4, 20.0
    prior = stats.beta(c * p0, c * (1 - p0))
    integral, _ = integrate.quad(
        lambda p: (p / p0) ** k * ((1 - p) / (1 - p0)) ** (n - k) * prior.pdf(p), 0, 1, epsabs=0, epsrel=1e-12
    )
    got = anytime_log_bayes_factors(np.array([k, n - k]), np.array([p0, 1 - p0]), c)
    assert math.exp(got) == pytest.approx(integral, rel=1e-8)


def test_the_bayes_factor_is_the_product_of_one_step_predictive_ratios():
    """Sequentially: each unit multiplies BF by (a_i + n_i) / (c + N) / p0_i (any order of units)."""
    rng = np.random.default_rng(3)
    shares = np.array([0.5, 0.3, 0.2])
    c = 40.0
    arms = rng.choice(3, size=400, p=[0.45, 0.35, 0.2])
    seen = np.zeros(3)
    log_bf, path = 0.0, []
    for arm in arms:
        log_bf += math.log((c * shares[arm] + seen[arm]) / (c + seen.sum()) / shares[arm])
        seen[arm] += 1
        path.append(log_bf)
    cumulative = np.array([np.bincount(arms[: i + 1], minlength=3) for i in range(arms.size)])
    got = anytime_log_bayes_factors(cumulative, shares, c)
    np.testing.assert_allclose(got, path, rtol=1e-9, atol=1e-9)


def _stirling_lgamma(x: decimal.Decimal) -> decimal.Decimal:
    """lgamma by Stirling's series to 8 terms in 50-digit decimals (exact to ~1e-40 for x >= 1000)."""
    coefficients = ["1/12", "-1/360", "1/1260", "-1/1680", "1/1188", "-691/360360", "1/156", "-3617/122400"]
    two_pi = decimal.Decimal("6.283185307179586476925286766559005768394338798750211641950")
    value = (x - decimal.Decimal("0.5")) * x.ln() - x + two_pi.ln() / 2
    for power, fraction in enumerate(coefficients):
        num, den = (decimal.Decimal(part) for part in fraction.split("/"))
        value += num / den / x ** (2 * power + 1)
    return value


def test_log_space_is_exact_enough_at_billions_of_units():
    decimal.getcontext().prec = 50
    counts, shares, c = [1_500_200_000, 1_499_800_000], [0.5, 0.5], 10_000
    d = decimal.Decimal
    reference = _stirling_lgamma(d(c)) - _stirling_lgamma(d(c + sum(counts)))
    for n in counts:
        reference += _stirling_lgamma(d(c // 2 + n)) - _stirling_lgamma(d(c // 2)) - n * d("0.5").ln()
    got = anytime_log_bayes_factors(np.array(counts, dtype=float), np.array(shares), c)
    assert np.isfinite(got)
    assert got == pytest.approx(float(reference), abs=1e-4)
    assert float(reference) > 10.0, "a 0.007% deviation on 3 billion units is strong evidence"


def test_p_values_are_the_running_minimum_of_one_over_bf_capped_at_one():
    log_bf = np.array([-2.0, 1.0, 3.0, 0.5, 5.0])
    expected = [1.0, math.exp(-1), math.exp(-3), math.exp(-3), math.exp(-5)]
    np.testing.assert_allclose(anytime_p_values(log_bf), expected, rtol=1e-12)


def test_the_result_stops_at_the_first_bin_below_alpha_and_stays_detected():
    counts = np.cumsum([[500, 500], [520, 480], [700, 300], [500, 500], [500, 500]], axis=0)
    result = anytime_srm(counts, [1, 1], ("a", "b"), alpha=0.01, concentration=1_000)
    shares = np.array([0.5, 0.5])
    by_hand = [direct_log_bf(row, shares, 1_000) for row in counts]
    p_values = np.minimum(1, np.exp(-np.maximum.accumulate(by_hand)))
    assert result.stopped_index == int(np.flatnonzero(p_values <= 0.01)[0]) == 2
    assert result.srm_detected
    np.testing.assert_allclose(result.running_p_values, p_values, rtol=1e-9)
    assert result.p_value == pytest.approx(p_values[-1], rel=1e-9)
    assert result.log_bayes_factor == pytest.approx(by_hand[-1], rel=1e-9)
    assert result.observed_counts == (2720, 2280)
    assert result.observed_shares == pytest.approx((2720 / 5000, 2280 / 5000))
    assert result.expected_shares == (0.5, 0.5)
    assert result["stopped_index"] == 2
    json.dumps(result.to_dict())


def test_bad_count_matrices_are_rejected():
    with pytest.raises(ParameterError, match="non-decreasing"):
        anytime_srm(np.array([[10, 10], [9, 12]]), [1, 1], ("a", "b"))


# -- min_units and min_deviation ------------------------------------------------------------------


def test_min_units_holds_the_verdict_until_every_arm_has_enough_units():
    counts = np.cumsum([[300, 100], [300, 100], [300, 100], [300, 100]], axis=0)
    free = anytime_srm(counts, [1, 1], ("a", "b"), concentration=100)
    assert free.stopped_index == 0
    gated = anytime_srm(counts, [1, 1], ("a", "b"), concentration=100, min_units=300)
    assert gated.stopped_index == 2, "b reaches 300 units in the third bin"
    waiting = anytime_srm(counts, [1, 1], ("a", "b"), concentration=100, min_units=1_000)
    assert not waiting.srm_detected
    assert not waiting.enough_units
    assert "No verdict yet: b=400 unit(s), fewer than min_units=1000" in waiting.message
    assert waiting.p_value < 0.01, "the p-value is still reported"


def test_min_deviation_ignores_significant_but_tiny_mismatches_at_large_n():
    counts = [500_100_000, 499_900_000]  # 0.01% off 50/50, p ~ 3e-10
    seed_like = chi_square_srm(counts, [1, 1], ("a", "b"))
    assert seed_like.srm_detected
    assert seed_like.max_share_deviation == pytest.approx(0.0001)
    ignored = chi_square_srm(counts, [1, 1], ("a", "b"), min_deviation=0.001)
    assert not ignored.srm_detected
    assert ignored.p_value == seed_like.p_value
    assert "No SRM counted" in ignored.message
    assert "min_deviation=0.1000%" in ignored.message
    counted = chi_square_srm(counts, [1, 1], ("a", "b"), min_deviation=0.00005)
    assert counted.srm_detected

    matrix = np.array([counts])
    assert anytime_srm(matrix, [1, 1], ("a", "b")).srm_detected
    gated = anytime_srm(matrix, [1, 1], ("a", "b"), min_deviation=0.001)
    assert not gated.srm_detected
    assert "No SRM counted" in gated.message


def test_chi_square_min_units_gives_no_verdict_and_says_so():
    result = chi_square_srm([900, 10], [1, 1], ("a", "b"), min_units=50)
    assert result.p_value < 1e-100
    assert not result.srm_detected
    assert not result.enough_units
    assert "No verdict yet: b=10 unit(s), fewer than min_units=50" in result.message


# -- through the monitor -------------------------------------------------------------------------


def reference_cumulative(log: pd.DataFrame) -> np.ndarray:
    """Distinct units per variant by the end of each day, from first exposures, in pandas."""
    first = log.groupby(["variant", "unit_id"]).ts.min().dt.floor("D").reset_index()
    per_day = first.groupby(["ts", "variant"]).size().unstack(fill_value=0)
    days = pd.date_range(per_day.index.min(), log.ts.max().floor("D"), freq="D")
    return per_day.reindex(days, fill_value=0).cumsum().to_numpy()


@pytest.fixture
def broken_log():
    log = make_log(units=3000, rows=24_000, days=6)
    return log[~((log.variant == "treatment") & (log.unit_id % 3 == 1))]


def test_monitor_check_equals_the_pure_function_on_pandas_counts(broken_log):
    result = xs.LiveMonitor(broken_log, time_col="ts").check_anytime_srm([1, 1], concentration=2_000)
    expected = anytime_srm(reference_cumulative(broken_log), [1, 1], ("control", "treatment"), 0.01, 2_000)
    np.testing.assert_allclose(result.running_log_bayes_factors, expected.running_log_bayes_factors)
    assert result.stopped_index == expected.stopped_index >= 0
    assert result.stopped_at == pd.Timestamp("2026-01-05") + pd.Timedelta(days=result.stopped_index)
    assert len(result.bins) == 6


def test_monitor_min_units_and_three_arms():
    log = make_log(units=900, rows=6000, variants=("a", "b", "c"))
    monitor = xs.LiveMonitor(log, time_col="ts")
    result = monitor.check_anytime_srm({"a": 1, "b": 1, "c": 1}, freq="h", min_units=10_000)
    assert result.variants == ("a", "b", "c")
    assert not result.srm_detected
    assert "fewer than min_units=10000" in result.message
    assert monitor.check_live_srm([1, 1, 1], min_units=10_000).enough_units is False


def test_telemetry_uses_the_change_point_mixture_by_default_and_the_anytime_test_by_name(broken_log):
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    default = monitor.run_telemetry_checks([1, 1], freq="D")
    assert default.sequential_srm.method == "changepoint"
    assert default.alerts_triggered == ("SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED")
    assert re.search(r"change-point SRM +ALERT +SRM detected at bin", format_report(default, "log"))
    report = monitor.run_telemetry_checks([1, 1], freq="D", sequential_method="anytime")
    assert isinstance(report.sequential_srm, AnytimeSRMResult)
    assert report.sequential_srm.method == "anytime"
    assert report.alerts_triggered == ("SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED")
    assert report.shutoff_triggered
    direct = monitor.check_anytime_srm([1, 1], freq="D")
    assert report.sequential_srm.stopped_index == direct.stopped_index
    assert re.search(r"anytime-valid SRM +ALERT +SRM detected at bin", format_report(report, "log"))
    sprt = xs.LiveMonitor(broken_log, time_col="ts").run_telemetry_checks(
        [1, 1], freq="D", sequential_method="sprt"
    )
    assert isinstance(sprt.sequential_srm, SequentialSRMResult)


def test_telemetry_min_deviation_silences_both_srm_alerts(broken_log):
    shares = broken_log.groupby("variant").unit_id.nunique() / broken_log.unit_id.nunique()
    deviation = abs(shares["control"] - 0.5)
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    quiet = monitor.run_telemetry_checks([1, 1], min_deviation=deviation + 0.005)
    assert quiet.alerts_triggered == ()
    assert not monitor.shutoff_triggered
    loud = monitor.run_telemetry_checks([1, 1], min_deviation=deviation - 0.005)
    assert loud.alerts_triggered == ("SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"concentration": 0}, "concentration=0 must be a positive finite number"),
        ({"concentration": -5.0}, "concentration=-5.0 must be a positive finite number"),
        ({"alpha": 1.5}, "alpha=1.5 must be between 0 and 1"),
        ({"min_units": -1}, "min_units=-1 must be an integer >= 0"),
        ({"min_units": 2.5}, "min_units=2.5 must be an integer >= 0"),
        ({"min_deviation": 1.0}, "min_deviation=1.0 must be a share between 0"),
    ],
)
def test_bad_anytime_parameters_fail_before_any_query(log, query_log, kwargs, words):
    monitor = xs.LiveMonitor(log, time_col="ts")
    with pytest.raises(ParameterError) as info:
        monitor.check_anytime_srm([1, 1], **kwargs)
    assert words in str(info.value)
    telemetry_kwargs = {("sequential_alpha" if k == "alpha" else k): v for k, v in kwargs.items()}
    with pytest.raises(ParameterError, match="must be"):
        monitor.run_telemetry_checks([1, 1], **telemetry_kwargs)
    assert query_log == []


def test_unknown_sequential_method_is_rejected(log, query_log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    refused = "sequential_method='wald' must be 'anytime', 'changepoint' or 'sprt'"
    with pytest.raises(ParameterError, match=refused):
        monitor.run_telemetry_checks([1, 1], sequential_method="wald")
    assert query_log == []
