"""The seasonal traffic-drop test against hand computations, and its dispatch to the seed's z-test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.stats.anomaly import (
    DROP_METHODS,
    check_drop_method,
    drop_flags,
    drop_test,
    traffic_drop_test,
)
from xpyrment_sql.stats.seasonal import MIN_RELATIVE_DROP, SEASONAL_Z_THRESHOLD

DAY = 86_400
HOUR = 3_600
WEEKLY_PROFILE = [100.0, 100, 100, 100, 100, 60, 60]


def hourly_traffic(rng: np.random.Generator, units_per_day: float, weeks: int) -> np.ndarray:
    """Poisson hourly counts: a cosine day (trough 20% of the peak at 04:00) and weekends 30% lower."""
    hour = np.arange(weeks * 168)
    shape = 0.2 + 0.8 * (1 - np.cos(2 * np.pi * ((hour % 24) - 4) / 24)) / 2
    weekend = np.where((hour // 24) % 7 >= 5, 0.7, 1.0)
    return rng.poisson(units_per_day * shape * weekend / shape[:24].sum()).astype(float)


def nb_score(x: float, mean: float, variance: float) -> float:
    """Normal score of P(X <= x), X negative binomial with this mean and variance (n, p by hand)."""
    n, p = mean**2 / (variance - mean), mean / variance
    return float(stats.norm.ppf(stats.nbinom.cdf(x, n, p)))


def test_seasonal_test_by_hand_on_daily_bins():
    # Three weeks of an exact weekly profile; the judged Monday (day 21) has 50 units.
    volumes = np.array(WEEKLY_PROFILE * 3 + [50.0])
    result = drop_test(volumes, bin_seconds=DAY)
    # K = 3 earlier Mondays, all 100: median 100. Every earlier day matched its baseline, so the level
    # is 1 and every residual is 0: phi = 1 (the floor), 14 residuals. w_3 = 1 + 0.4487.
    variance = 100 * 1.4487
    threshold = -stats.t.ppf(stats.norm.cdf(-SEASONAL_Z_THRESHOLD), 14)
    assert result.method == "seasonal"
    assert result.cycle_bins == 7
    assert result.cycles == 3
    assert result.dispersion == 1.0
    assert result.historical_mean == pytest.approx(100.0)
    assert result.historical_std == pytest.approx(math.sqrt(variance))
    assert result.z_score == pytest.approx(nb_score(50, 100, variance), rel=1e-9)
    assert result.threshold == pytest.approx(threshold)
    assert result.anomaly_detected
    assert result.message.startswith(
        "50 (unit, variant) pairs vs 100 expected from the same weekday in 3 earlier weeks"
    )


def test_the_level_scales_the_baseline_and_a_past_outage_does_not_move_it():
    # Traffic doubled a week ago; one Tuesday in the first week was an outage (0 units).
    first = WEEKLY_PROFILE.copy()
    first[1] = 0.0
    volumes = np.array(first + WEEKLY_PROFILE * 2 + [2 * p for p in WEEKLY_PROFILE] + [200.0])
    result = drop_test(volumes, bin_seconds=DAY)
    # Baseline: median of the four earlier Mondays (100, 100, 100, 200) = 100. Level: the last seven
    # days against their medians (Tuesday's is median(0, 100, 100) = 100) are all at ratio 2.
    assert result.cycles == 4
    assert result.historical_mean == pytest.approx(200.0)
    assert not result.anomaly_detected


def test_the_judged_bin_never_enters_its_own_forecast():
    volumes = np.array(WEEKLY_PROFILE * 3 + [100.0])
    dropped = volumes.copy()
    dropped[-1] = 0.0
    kept, cut = drop_test(volumes, bin_seconds=DAY), drop_test(dropped, bin_seconds=DAY)
    assert (kept.historical_mean, kept.historical_std) == (cut.historical_mean, cut.historical_std)
    assert cut.anomaly_detected
    assert not kept.anomaly_detected


@pytest.mark.parametrize("units_per_day", [2_000, 20_000, 200_000])
def test_outages_and_half_drops_are_flagged_at_every_hour_of_a_day(units_per_day):
    volumes = hourly_traffic(np.random.default_rng(units_per_day), units_per_day, weeks=4)
    for t in range(volumes.size - 24, volumes.size):
        history = volumes[:t]
        outage = drop_test(np.append(history, 0.0), bin_seconds=HOUR)
        assert outage.anomaly_detected, outage.message
        assert outage.cycle_bins == 168
        if units_per_day >= 20_000:
            half = drop_test(np.append(history, volumes[t] // 2), bin_seconds=HOUR)
            assert half.anomaly_detected, half.message


@settings(max_examples=6, deadline=None)
@given(units_per_day=st.floats(2_000, 200_000), seed=st.integers(0, 2**32 - 1))
def test_healthy_seasonal_traffic_is_never_flagged(units_per_day, seed):
    volumes = hourly_traffic(np.random.default_rng(seed), units_per_day, weeks=3)
    flags = drop_flags(volumes, bin_seconds=HOUR)
    assert not flags[168:].any(), np.flatnonzero(flags)


def test_drop_flags_are_each_bins_drop_test_verdict():
    volumes = hourly_traffic(np.random.default_rng(5), 20_000, weeks=2)
    volumes[200] = 0.0
    volumes[300] = volumes[300] // 3
    flags = drop_flags(volumes, bin_seconds=HOUR)
    for t in [*range(0, 30), *range(160, 176), *range(195, 205), 300, volumes.size - 1]:
        assert flags[t] == drop_test(volumes[: t + 1], bin_seconds=HOUR).anomaly_detected, t
    assert flags[200]
    assert flags[300]


def test_less_than_one_cycle_falls_back_to_the_seed_z_test():
    volumes = np.array([100.0, 102, 98, 101, 99, 100, 100, 60.0])
    result = drop_test(volumes, bin_seconds=DAY)
    seed = traffic_drop_test(volumes, 7, 3.0, 0.5)
    assert result.method == "zscore"
    assert result.threshold == 3.0
    keys = ("anomaly_detected", "latest_volume", "historical_mean", "historical_std", "z_score", "message")
    for key in keys:
        assert result[key] == seed[key]


@pytest.mark.parametrize("bin_seconds", [7 * DAY, 7 * HOUR])
def test_bins_without_a_daily_cycle_use_the_z_test(bin_seconds):
    volumes = np.array(WEEKLY_PROFILE * 4)
    result = drop_test(volumes, bin_seconds=bin_seconds, z_threshold=2.5, window=5)
    seed = traffic_drop_test(volumes, 5, 2.5, 0.5)
    assert result.method == "zscore"
    assert result.threshold == 2.5
    assert result.z_score == seed.z_score
    assert result.anomaly_detected == seed.anomaly_detected


def test_zscore_method_is_the_seed_test_and_its_flags_match():
    volumes = hourly_traffic(np.random.default_rng(3), 20_000, weeks=1)
    result = drop_test(volumes, bin_seconds=HOUR, method="zscore")
    assert result.z_score == traffic_drop_test(volumes).z_score
    flags = drop_flags(volumes, bin_seconds=HOUR, method="zscore")
    by_bin = [traffic_drop_test(volumes[: t + 1]).anomaly_detected for t in range(volumes.size)]
    assert flags.tolist() == by_bin
    assert drop_flags(volumes, 7, 3.0, 0.5).tolist() == by_bin, "the seed's positional call"


def test_a_drop_under_the_minimum_relative_drop_is_never_flagged():
    volumes = np.array([1e6, 1e6, 1e6, 1e6, 1e6, 6e5, 6e5] * 3 + [1e6 * (1 - MIN_RELATIVE_DROP / 2)])
    result = drop_test(volumes, bin_seconds=DAY)
    assert result.z_score < -result.threshold
    assert not result.anomaly_detected


@pytest.mark.parametrize("method", ["Seasonal", "holt-winters", ""])
def test_bad_method_names_the_parameter_and_the_choices(method):
    with pytest.raises(ParameterError, match="method") as error:
        drop_test(np.ones(10), bin_seconds=HOUR, method=method)
    for accepted in DROP_METHODS:
        assert repr(accepted) in str(error.value)
    with pytest.raises(ParameterError, match="method"):
        check_drop_method(method)


@pytest.mark.parametrize("bin_seconds", [0, -60, 1.5, True])
def test_bad_bin_seconds_is_a_parameter_error(bin_seconds):
    with pytest.raises(ParameterError, match="bin_seconds"):
        drop_test(np.ones(10), bin_seconds=bin_seconds)
