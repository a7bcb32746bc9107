"""A fast version of the calibration study: the anytime test keeps its level under 30 daily looks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks import calibration, changepoint_calibration, drop_calibration
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION

SIMS = 10_000
ALPHA = 0.01


@pytest.fixture(scope="module")
def healthy() -> np.ndarray:
    return calibration.cumulative_counts(np.random.default_rng(11), SIMS, calibration.DESIGN)


def upper_bound(alpha: float, sims: int) -> float:
    """alpha plus three Monte Carlo standard errors of a rate estimated from ``sims`` experiments."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / sims)


def test_the_anytime_test_keeps_its_level_under_thirty_daily_looks(healthy):
    days = calibration.anytime_days(healthy, calibration.DESIGN, ALPHA, DEFAULT_CONCENTRATION)
    assert calibration.Outcome(days).rate <= upper_bound(ALPHA, SIMS)


def test_the_same_harness_catches_chi_square_peeking(healthy):
    """Re-running chi-square after every day is far above alpha: the bound above can fail."""
    days = calibration.chi_square_peeking(healthy, calibration.DESIGN, ALPHA)
    assert calibration.Outcome(days).rate > 3 * upper_bound(ALPHA, SIMS)


def test_the_simulated_counts_are_multinomial_day_by_day(healthy):
    daily = np.diff(healthy, axis=1, prepend=0)
    assert np.all(daily.sum(axis=-1) == calibration.UNITS_PER_DAY)
    treated = daily[..., 1].ravel()
    expected = stats.binom(calibration.UNITS_PER_DAY, 0.5)
    assert treated.mean() == pytest.approx(expected.mean(), abs=4 * expected.std() / math.sqrt(treated.size))
    assert treated.std() == pytest.approx(expected.std(), rel=0.05)


def test_the_unit_by_unit_sprt_detects_a_gross_split_on_day_one_and_rarely_a_fair_one():
    rng = np.random.default_rng(12)
    gross = calibration.sprt_days(rng, 40, treatment_share=0.4, days=2, units_per_day=2_000)
    assert np.all(gross == 1)
    fair = calibration.sprt_days(rng, 200, treatment_share=0.5, days=2, units_per_day=2_000)
    assert calibration.Outcome(fair).rate <= upper_bound(ALPHA, 200)


def test_detection_days_and_medians():
    outcome = calibration.Outcome(np.array([3.0, 1.0, math.inf, 2.0, math.inf]))
    assert outcome.rate == pytest.approx(0.6)
    assert outcome.share_by(2) == pytest.approx(0.4)
    assert outcome.median_day()[0] == 3.0
    rejected = np.array([[False, True, True], [False, False, False]])
    assert calibration.first_day(rejected).tolist() == [2.0, math.inf]
    assert calibration.first_day(rejected, looks_per_day=24)[0] == pytest.approx(2 / 24)


def drop_rates(units_per_day: float, seed: int) -> drop_calibration.Scenario:
    """The seasonal test on a few noisy 4-week hourly series, every hour after the first week judged."""
    series = drop_calibration.simulate_hourly(
        np.random.default_rng(seed), 4, units_per_day, drop_calibration.NOISE, weeks=4
    )
    night = (np.arange(series.shape[1]) % 24 <= 7) & (np.arange(series.shape[1]) % 24 >= 1)
    return drop_calibration.judge(
        np.random.default_rng(seed + 1), series, "seasonal", 24, slice(drop_calibration.WEEK, None), night
    )


def slack(rate: float, trials: int) -> float:
    """Three Monte Carlo standard errors of a rate estimated from ``trials`` bins."""
    return 3 * math.sqrt(rate * (1 - rate) / trials)


@pytest.mark.parametrize("units_per_day", [2_000, 20_000])
def test_the_seasonal_drop_test_meets_its_targets_on_a_small_run(units_per_day):
    rates = drop_rates(units_per_day, seed=units_per_day)
    trials = rates.healthy.trials
    assert trials == 4 * 3 * 168
    assert rates.healthy.rate <= 0.002 + slack(0.002, trials)
    assert rates.outage.rate >= 0.99 - slack(0.99, trials)
    if units_per_day == 20_000:
        assert rates.half.rate >= 0.95 - slack(0.95, trials)


def test_the_seed_z_test_fails_the_same_targets():
    """The harness can tell a bad test: the seed's z-test alarms on percents of healthy hours."""
    series = drop_calibration.simulate_hourly(np.random.default_rng(31), 3, 20_000, 0.0, weeks=2)
    rates = drop_calibration.judge(
        np.random.default_rng(32), series, "zscore", 24, slice(168, None), np.ones(series.shape[1], bool)
    )
    assert rates.healthy.rate > 0.01
    assert rates.outage.rate < 0.9


def test_the_simulated_hourly_traffic_has_the_stated_cycle_and_weekend():
    rng = np.random.default_rng(41)
    series = drop_calibration.simulate_hourly(rng, 200, 20_000, 0.0, weeks=1)
    assert series.shape == (200, 168)
    days = series.reshape(200, 7, 24)
    weekday_totals = np.sort(days.sum(axis=2), axis=1)[:, 2:]
    assert weekday_totals.mean() == pytest.approx(20_000, rel=0.01)
    hourly = days.mean(axis=(0, 1))
    assert 0.19 < hourly.min() / hourly.max() < 0.27
    assert int(np.argmin(hourly)) == 4


def test_the_change_point_mixture_keeps_its_level_and_beats_the_cumulative_test_on_a_late_break():
    """A small run of the change-point study: no more false alarms than alpha allows over 30 days of
    hourly looks, and a day-20 break is found days sooner than by the cumulative test."""
    sims = 300
    healthy, cumulative = changepoint_calibration._outcomes(np.random.default_rng(21), sims, 100, days=30)
    assert healthy.rate <= upper_bound(ALPHA, sims)
    assert cumulative.rate <= upper_bound(ALPHA, sims)
    broken = changepoint_calibration._outcomes(
        np.random.default_rng(22), 100, 100, days=30, onset_day=20, loss=0.2
    )
    mixture_delay, cumulative_delay = (outcome.median_delay(20) for outcome in broken)
    assert mixture_delay < 1.0 < cumulative_delay


def test_calibration_md_splits_into_its_three_parts_and_back():
    text = "# Calibration of the sequential SRM tests\nA\n\n" + calibration.DROPS_HEADING + "\nB\n\n"
    text += changepoint_calibration.HEADING + "\nC\n"
    srm, drops, changepoint = calibration.split_parts(text)
    assert (srm, drops, changepoint) == (
        "# Calibration of the sequential SRM tests\nA\n",
        calibration.DROPS_HEADING + "\nB\n",
        changepoint_calibration.HEADING + "\nC\n",
    )
    assert "\n".join((srm, drops, changepoint)) == text


def test_the_change_point_study_names_the_onset_day_and_checks_every_tuning_value():
    broken, _ = changepoint_calibration._outcomes(
        np.random.default_rng(23), 40, 40, days=30, onset_day=20, loss=0.2
    )
    assert broken.onset_named(20) >= 0.9, "the break's own day carries the most evidence"
    assert broken.onset_named(20, slack=1) >= broken.onset_named(20)
    tuning = changepoint_calibration._sensitivity(20, 20)
    assert [name for name, _ in tuning] == [name for name, _ in changepoint_calibration.VARIANTS]
    assert all(len(outcomes) == len(changepoint_calibration.SENSITIVITY_SCENARIOS) for _, outcomes in tuning)
