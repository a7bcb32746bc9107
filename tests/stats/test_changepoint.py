"""The change-point mixture against a reference written here from the formula, and on simulated
breaks: the onset day it reports, no alarm on a healthy split, any number of arms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln

from xpyrment_sql.bins import parse_freq
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.stats.changepoint import (
    ChangePointSettings,
    changepoint_evidence,
    changepoint_srm,
    day_starts,
)


def dirichlet_multinomial_log_bf(counts, shares, concentration) -> float:
    """log of (Dirichlet-multinomial marginal likelihood) / (multinomial likelihood under shares)."""
    counts, shares = np.asarray(counts, float), np.asarray(shares, float)
    prior = concentration * shares
    marginal = gammaln(concentration) - gammaln(concentration + counts.sum())
    marginal += sum(gammaln(a + n) - gammaln(a) for a, n in zip(prior, counts, strict=True))
    return float(marginal - (counts * np.log(shares)).sum())


def reference_log_r(new, shares, first_bins, t, w, c0, c1, spread) -> float:
    """``log R_t`` summed term by term, weights from the formula, the never-started days in closed
    form checked against a long partial sum."""
    total = w * math.exp(dirichlet_multinomial_log_bf(new[: t + 1].sum(axis=0), shares, c0))
    for s, first in enumerate(first_bins, start=1):
        weight = (1 - w) * spread / ((s + spread - 1) * (s + spread))
        if t >= first:
            total += weight * math.exp(
                dirichlet_multinomial_log_bf(new[first : t + 1].sum(axis=0), shares, c1)
            )
        else:
            total += weight
    later = sum(
        (1 - w) * spread / ((s + spread - 1) * (s + spread)) for s in range(len(first_bins) + 1, 10**6)
    )
    return math.log(total + later)


def test_the_evidence_is_the_formulas_term_by_term():
    rng = np.random.default_rng(1)
    new = rng.poisson([40, 60, 50], size=(30, 3)).astype(float)
    new[18:, 1] *= 0.7
    shares = np.array([0.3, 0.4, 0.3])
    first_bins = np.array([0, 6, 12, 18, 24])
    settings = ChangePointSettings(0.6, 5_000.0, 500.0, 3)
    got = changepoint_evidence(new, shares, first_bins, settings)
    for t in (0, 5, 6, 17, 18, 29):
        expected = reference_log_r(new, shares, first_bins, t, 0.6, 5_000.0, 500.0, 3)
        assert got.log_evidence[t] == pytest.approx(expected, rel=1e-9, abs=1e-5)


def test_the_start_weights_sum_to_one_minus_w():
    settings = ChangePointSettings(0.75, spread_days=60)
    weights = settings.start_weights(10**6)
    assert weights[0] == pytest.approx(0.25 / 61, rel=1e-12), "day 1: (1-w) S / (S (S+1))"
    assert weights[59] == pytest.approx(0.25 * 60 / (119 * 120), rel=1e-12), "day 60: a quarter of day 1's"
    assert weights.sum() + settings.unstarted_weight(10**6) == pytest.approx(0.25, rel=1e-12)
    assert settings.unstarted_weight(0) == pytest.approx(0.25)


def hourly(days: int) -> pd.DatetimeIndex:
    return pd.date_range("2026-01-05", periods=24 * days, freq="h")


def test_day_starts_follow_the_bins_days():
    assert day_starts(hourly(3)).tolist() == [0, 24, 48]
    assert day_starts(pd.date_range("2026-01-05", periods=4, freq="D")).tolist() == [0, 1, 2, 3]
    assert day_starts(pd.DatetimeIndex([])).tolist() == []


def simulated(days: int, onset_day: int | None, loss: float, seed: int, arms: int = 2) -> np.ndarray:
    """New units per hour: 10,000 a day with a daily cycle, split evenly; from ``onset_day`` on the
    last arm loses ``loss`` of its new units."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * days)
    rate = 10_000 / 24 * (1 + 0.5 * np.sin(2 * np.pi * hours / 24))
    new = rng.poisson(rate[:, None] / arms, size=(len(hours), arms)).astype(float)
    if onset_day is not None:
        broken = hours >= 24 * (onset_day - 1)
        new[broken, -1] = rng.binomial(new[broken, -1].astype(int), 1 - loss)
    return new


def test_a_late_break_is_caught_within_a_day_and_its_day_named():
    bins = hourly(30)
    new = simulated(30, onset_day=20, loss=0.2, seed=4)
    result = changepoint_srm(new, [1, 1], ("control", "treatment"), bins, alpha=0.01)
    assert result.srm_detected
    assert result.method == "changepoint"
    onset = pd.Timestamp("2026-01-05") + pd.Timedelta(days=19)
    assert result.onset_at == onset
    assert onset <= result.stopped_at < onset + pd.Timedelta(days=1)
    assert "started on 2026-01-24" in result.message


def test_a_healthy_split_raises_nothing_with_three_arms():
    bins = hourly(20)
    new = simulated(20, onset_day=None, loss=0.0, seed=5, arms=3)
    result = changepoint_srm(new, [1, 1, 1], ("a", "b", "c"), bins, alpha=0.01)
    assert not result.srm_detected
    assert result.onset_at is None
    assert result.p_value > 0.01
    broken = simulated(20, onset_day=8, loss=0.3, seed=5, arms=3)
    caught = changepoint_srm(broken, [1, 1, 1], ("a", "b", "c"), bins, alpha=0.01)
    assert caught.onset_at == pd.Timestamp("2026-01-12")


def test_bad_settings_are_named():
    with pytest.raises(ParameterError, match="cumulative_weight"):
        ChangePointSettings(cumulative_weight=1.0)
    with pytest.raises(ParameterError, match="spread_days"):
        ChangePointSettings(spread_days=0)
    with pytest.raises(ParameterError, match="concentration"):
        ChangePointSettings(onset_concentration=-1)


def test_the_mixture_is_a_martingale_under_the_design_by_enumeration():
    """``E[R_t | the bins before] = R_{t-1}``: every outcome of the last bin enumerated with its
    binomial probability under the designed shares, for every history of the earlier bins."""
    totals, share = (3, 2, 4), 0.3
    settings = ChangePointSettings(0.5, 20.0, 5.0, 2)
    starts = np.arange(len(totals))
    for history in itertools.product(*(range(n + 1) for n in totals[:-1])):
        earlier = [[n - k, k] for n, k in zip(totals, history, strict=False)]
        before = changepoint_evidence(np.array(earlier, float), [1 - share, share], starts[:-1], settings)
        expected = 0.0
        last = totals[-1]
        for k in range(last + 1):
            new = np.array([*earlier, [last - k, k]], float)
            log_r = changepoint_evidence(new, [1 - share, share], starts, settings).log_evidence[-1]
            expected += stats.binom.pmf(k, last, share) * math.exp(log_r)
        assert expected == pytest.approx(math.exp(before.log_evidence[-1]), rel=1e-12)
    assert sum(
        stats.binom.pmf(k, 3, share)
        * math.exp(changepoint_evidence(np.array([[3.0 - k, k]]), [0.7, 0.3], [0], settings).log_evidence[0])
        for k in range(4)
    ) == pytest.approx(1.0, rel=1e-12), "R starts at 1 in expectation"


def test_day_starts_follow_local_midnight_across_daylight_saving():
    spec = parse_freq("h", "America/New_York")
    first = spec.key_of(pd.Timestamp("2026-03-07 00:00", tz="America/New_York"))
    labels = spec.labels(np.arange(first, first + 24 * 4))
    assert day_starts(labels).tolist() == [0, 24, 47, 71, 95], "8 March 2026 has 23 local hours"
    utc = pd.date_range("2026-03-07 05:00", periods=24 * 4, freq="h")
    assert day_starts(utc).tolist() == [0, 19, 43, 67, 91], "without a zone, days are UTC days"
    weeks = parse_freq("W", "Europe/Berlin").labels(np.arange(2900, 2905))
    assert day_starts(weeks).tolist() == [0, 1, 2, 3, 4], "a week bin is one start"


def test_a_break_on_day_six_of_daily_bins_is_named_day_six():
    """Daily bins of 20,000 units split 50/50 exactly, then 50/40 from day 6: the evidence since day 6
    dwarfs every other start's."""
    new = np.array([[10_000.0, 10_000.0]] * 5 + [[10_000.0, 8_000.0]] * 3)
    bins = pd.date_range("2026-01-05", periods=8, freq="D")
    result = changepoint_srm(new, [1, 1], ("control", "treatment"), bins, alpha=0.01)
    assert result.stopped_at == pd.Timestamp("2026-01-10")
    assert result.onset_at == pd.Timestamp("2026-01-10")
    evidence = changepoint_evidence(new, [0.5, 0.5], np.arange(8))
    assert evidence.onset_index[:5].tolist() == [0] * 5
    assert evidence.onset_index[5:].tolist() == [5, 5, 5]


def test_simulations_along_a_leading_axis_are_each_their_own_experiment():
    rng = np.random.default_rng(3)
    new = rng.poisson(50, size=(4, 48, 3)).astype(float)
    starts = np.arange(0, 48, 24)
    together = changepoint_evidence(new, [0.2, 0.3, 0.5], starts)
    for sim in range(4):
        alone = changepoint_evidence(new[sim], [0.2, 0.3, 0.5], starts)
        np.testing.assert_allclose(together.log_evidence[sim], alone.log_evidence, rtol=1e-12)
        np.testing.assert_array_equal(together.onset_index[sim], alone.onset_index)


@pytest.mark.parametrize("starts", [[], [1, 24], [0, 24, 24], [0, 48]])
def test_bad_starts_are_named(starts):
    with pytest.raises(ParameterError, match="starts="):
        changepoint_evidence(np.ones((48, 2)), [0.5, 0.5], starts)
