"""The pure statistics against hand calculations and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from xpyrment_sql.stats.anomaly import traffic_drop_test
from xpyrment_sql.stats.srm import (
    chi_square_srm,
    expected_shares,
    find_control,
    sprt_log_likelihood_ratio,
)


def test_chi_square_by_hand():
    # observed 520/480 against 50/50: X^2 = 2 * 20^2 / 500 = 1.6, p = P(chi2_1 > 1.6)
    result = chi_square_srm([520, 480], [1, 1], ("a", "b"), alpha=0.05)
    assert result.chi_square == pytest.approx(1.6, rel=1e-12)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(1.6 / 2)), rel=1e-12)
    assert not result.srm_detected


def test_chi_square_three_arms_against_scipy_and_dict_ratios():
    observed = [2100, 1000, 880]
    result = chi_square_srm(observed, {"b": 1, "a": 2, "c": 1}, ("a", "b", "c"), alpha=0.001)
    expected = np.array([2, 1, 1]) / 4 * sum(observed)
    assert result.p_value == pytest.approx(stats.chisquare(observed, expected).pvalue, rel=1e-12)
    assert result.expected_ratios == (2.0, 1.0, 1.0)
    assert result.srm_detected == (result.p_value < 0.001)


def test_expected_shares_normalise():
    assert expected_shares([3, 1], ("a", "b")).tolist() == [0.75, 0.25]


def test_sprt_matches_the_product_formula():
    p0, delta = 0.5, 0.02
    k, n = 130, 240
    up = ((p0 + delta) / p0) ** k * ((1 - p0 - delta) / (1 - p0)) ** (n - k)
    down = ((p0 - delta) / p0) ** k * ((1 - p0 + delta) / (1 - p0)) ** (n - k)
    log_lr = sprt_log_likelihood_ratio(np.array([k]), np.array([n]), p0, delta)
    assert math.exp(log_lr[0]) == pytest.approx(0.5 * up + 0.5 * down, rel=1e-12)


def test_sprt_log_space_survives_billions_of_units():
    log_lr = sprt_log_likelihood_ratio(np.array([2e9]), np.array([3e9]), 0.5, 0.02)
    assert np.isfinite(log_lr[0])
    assert log_lr[0] > 1e6


@pytest.mark.parametrize(
    ("variants", "control"),
    [(("a", "b"), "a"), (("b_ctrl", "a_treat"), "b_ctrl"), (("Control", "alpha"), "Control"), ((0, 1), 0)],
)
def test_control_is_found_like_the_seed(variants, control):
    found, treatment = find_control(tuple(sorted(variants, key=str)))
    assert found == control
    assert treatment != control


def test_anomaly_z_score_by_hand():
    volumes = np.array([100, 102, 98, 101, 99, 100, 100, 60.0])
    result = traffic_drop_test(volumes, window=7, z_threshold=3.0)
    baseline = volumes[:-1]
    mean = baseline.mean()
    sd = math.sqrt(((baseline - mean) ** 2).sum() / 6)
    assert result.historical_mean == pytest.approx(mean)
    assert result.historical_std == pytest.approx(sd)
    assert result.z_score == pytest.approx((60 - mean) / sd)
    assert result.anomaly_detected


def test_anomaly_edge_cases_follow_the_seed():
    assert traffic_drop_test(np.array([]))["message"] == "Traffic DataFrame is empty."
    short = traffic_drop_test(np.array([10.0, 4.0]))
    assert not short.anomaly_detected
    assert short.historical_mean == 10.0
    assert "need at least 3 bins" in short.message
    flat = traffic_drop_test(np.array([10.0, 10, 10, 4]), drop_threshold=0.5)
    assert flat.anomaly_detected
    assert flat.z_score == 0.0
    assert "Degenerate variance" in flat.message
    assert not traffic_drop_test(np.array([10.0, 10, 10, 6]), drop_threshold=0.5).anomaly_detected


def test_window_limits_the_baseline():
    volumes = np.array([1000.0, 1000, 10, 11, 9, 10, 10])
    result = traffic_drop_test(volumes, window=3)
    assert result.historical_mean == pytest.approx(10.0)


@settings(max_examples=200, deadline=None)
@given(
    p0=st.floats(0.05, 0.95),
    delta=st.floats(0.001, 0.04),
    y=st.lists(st.integers(0, 1), min_size=1, max_size=300),
)
def test_sprt_is_unchanged_by_swapping_the_arms_and_p0(p0, delta, y):
    """The symmetry the traffic query relies on: ``y -> 1 - y`` with ``p0 -> 1 - p0`` keeps every LR.

    So the query can test the non-reference arm with its own designed share, whichever arm is treatment.
    """
    y = np.asarray(y)
    n = np.arange(1, y.size + 1)
    treated = sprt_log_likelihood_ratio(np.cumsum(y), n, p0, delta)
    swapped = sprt_log_likelihood_ratio(np.cumsum(1 - y), n, 1 - p0, delta)
    np.testing.assert_allclose(swapped, treated, rtol=1e-12, atol=1e-12)
    up, down = p0 + delta, p0 - delta
    k = np.cumsum(y)
    likelihood_up = (up / p0) ** k * ((1 - up) / (1 - p0)) ** (n - k)
    likelihood_down = (down / p0) ** k * ((1 - down) / (1 - p0)) ** (n - k)
    by_hand = np.log(0.5 * likelihood_up + 0.5 * likelihood_down)
    np.testing.assert_allclose(treated, by_hand, rtol=1e-9, atol=1e-9)


def test_a_single_variant_has_nothing_to_mismatch():
    result = chi_square_srm([250], [1], ("only",))
    assert result.p_value == 1.0
    assert not result.srm_detected
