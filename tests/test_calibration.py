"""A fast version of the calibration study: the anytime test keeps its level under 30 daily looks."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import calibration
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
