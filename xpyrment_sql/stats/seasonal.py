"""The seasonal traffic-drop test: a bin against the same bin in earlier cycles, scaled to today's level.

Traffic has a daily cycle (nights at a fifth of the peak) and a weekly one (weekends lower), so the
bins just before a bin say little about it. Each bin ``t`` is forecast from strictly earlier bins:

* **Cycle.** With ``D`` bins a day, the cycle is the week (``P = 7 D``) once a week of history exists,
  else the day (``P = D``; daily bins have only the weekly cycle). Bins are consecutive, so ``t`` and
  ``t - P`` are one cycle apart.
* **Seasonal baseline** (seasonal naive, Hyndman & Athanasopoulos, *Forecasting: Principles and
  Practice*, 3rd ed., sections 5.2 and 3.6) over the ``K <= MAX_CYCLES`` earlier cycles, robust to a
  past outage in one of them:  ``b_t = median(x_{t-P}, ..., x_{t-K P})``.
* **Level.** Traffic grows and shrinks, so the baseline is scaled by how the ``R`` bins before ``t``
  (one day; one week for daily bins) compared with their own baselines, trimmed like an interquartile
  mean so an outage in those bins neither lowers nor raises it:
  ``L_t = sum_kept x_s / sum_kept b_s`` over the bins whose ratio ``x_s / b_s`` is in the central half
  (the lowest and highest quarter, rounded down, are dropped). The expectation is ``mu_t = L_t b_t``.
* **Dispersion** (quasi-Poisson, McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 1989,
  sections 4.5 and 9.2): ``Var(x_t - mu_t) = phi mu_t w_K`` where ``w_K = 1 + v_K`` counts the sampling
  variance of the median of ``K`` cycles (``v_K`` = variance of the median of ``K`` standard normals).
  ``phi`` is estimated from the standardized one-step residuals ``r_s = (x_s - mu_s) / sqrt(mu_s w_s)``
  of the recent bins (the last week, at most ``MAX_DISPERSION_BINS``): extra noise grows with volume,
  so only the third of them whose expectation is nearest ``mu_t`` (in log scale, at least ``MIN_NEAR``)
  are used; residuals beyond 3 robust standard deviations (past outages) are dropped and the truncated
  mean of ``r^2`` is rescaled to the untruncated variance. ``phi`` is floored at 1 (Poisson).
* **Score.** ``z_t`` is the normal score of the lower tail of the count: ``z = Phi^-1(P(X <= x_t))``,
  ``X`` negative binomial with mean ``mu_t`` and variance ``phi mu_t w_K`` (a gamma-Poisson mixture,
  the predictive law of a Poisson count whose rate is itself estimated). For large counts it equals
  ``(x_t - mu_t) / sqrt(phi mu_t w_K)``; for small ones it keeps the Poisson lower tail (zero units
  where twenty were expected is ``P = e^-20`` under Poisson, not the ``-4.5`` sd a normal would say).
* **Verdict.** A drop when ``z_t < -tau_df`` and ``x_t < (1 - MIN_RELATIVE_DROP) mu_t``. ``tau_df``
  is the Student-t quantile with the residuals' degrees of freedom at the one-sided level
  ``Phi(-tau)`` of the normal threshold ``tau`` (the dispersion is estimated, not known); the relative
  gate ignores drops under 10% of the expectation, which large volumes would make significant but no
  one acts on.

The idea of comparing a bin with a seasonal baseline and a robust residual scale follows Twitter's
seasonal hybrid ESD (Hochenbaum, Vallis & Kejariwal, "Automatic Anomaly Detection in the Cloud via
Statistical Learning", 2017). Calibration by simulation: ``benchmarks/CALIBRATION.md``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from xpyrment_sql.stats.distributions import (
    nbinom_logcdf,
    nbinom_logsf,
    normal_cdf,
    normal_ppf_of_log,
    t_ppf,
)

SECONDS_PER_DAY = 86_400
DAYS_PER_WEEK = 7
SEASONAL_Z_THRESHOLD = 3.5
MAX_CYCLES = 5
MEDIAN_VARIANCE = (1.0, 0.5, 0.4487, 0.3613, 0.2868)
MIN_RELATIVE_DROP = 0.10
MAX_DISPERSION_BINS = 336
NEAR_FRACTION = 1 / 3
MIN_NEAR = 24
MIN_RESIDUALS = 2
TRUNCATION = 3.0
MAX_SCORE = 50.0
_CHI2_MEDIAN = 0.454936423119572
"""``scipy.stats.chi2(1).median()``; this constant and the next are written out so that importing the
module loads no scipy (``tests/stats/test_distributions.py`` recomputes both)."""
_TRUNCATED_VARIANCE = 0.9733369246625415
"""Variance of a standard normal truncated to ``[-TRUNCATION, TRUNCATION]``:
``1 - 2 T phi(T) / (2 Phi(T) - 1)``."""


def bins_per_day(bin_seconds: int) -> int | None:
    """Bins in a day when ``bin_seconds`` divides a day (minute ... daily bins), else ``None``."""
    if 0 < bin_seconds <= SECONDS_PER_DAY and SECONDS_PER_DAY % bin_seconds == 0:
        return SECONDS_PER_DAY // bin_seconds
    return None


def cycle_bins(history: int, per_day: int | None) -> int:
    """The cycle a bin with ``history`` earlier bins is compared over: a week, a day, or 0 (none yet)."""
    if per_day is None:
        return 0
    week = DAYS_PER_WEEK * per_day
    if history >= week:
        return week
    if per_day > 1 and history >= per_day:
        return per_day
    return 0


@dataclasses.dataclass(frozen=True)
class SeasonalForecast:
    """Each bin's forecast from the bins before it (arrays over bins; NaN or 0 where there is none).

    Attributes:
        expected: ``mu_t = L_t b_t``.
        variance: ``phi_t mu_t w_K``, the variance of the bin around ``mu_t``.
        dispersion: ``phi_t``.
        threshold: ``tau_df``, the score below ``-tau_df`` that is a drop.
        cycle_bins: ``P`` (0 when the bin has no full cycle before it).
        cycles: ``K``, earlier cycles in the baseline.
        residuals: Degrees of freedom of ``phi_t`` (residuals kept); the test needs ``MIN_RESIDUALS``.
    """

    expected: np.ndarray
    variance: np.ndarray
    dispersion: np.ndarray
    threshold: np.ndarray
    cycle_bins: np.ndarray
    cycles: np.ndarray
    residuals: np.ndarray

    @property
    def testable(self) -> np.ndarray:
        """Bins the seasonal test can judge (a cycle, a positive expectation, enough residuals)."""
        return (self.cycle_bins > 0) & (self.expected > 0) & (self.residuals >= MIN_RESIDUALS)


def _baseline(volumes: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """``b_t`` (median over up to ``MAX_CYCLES`` earlier cycles) and ``K_t`` for every bin."""
    n = volumes.size
    lags = np.full((n, MAX_CYCLES), np.nan)
    for k in range(1, MAX_CYCLES + 1):
        if k * period < n:
            lags[k * period :, k - 1] = volumes[: n - k * period]
    cycles = np.sum(~np.isnan(lags), axis=1)
    baseline = np.full(n, np.nan)
    has = cycles > 0
    baseline[has] = np.nanmedian(lags[has], axis=1)
    return baseline, cycles


def _level(volumes: np.ndarray, baseline: np.ndarray, window: int, start: int) -> np.ndarray:
    """``L_t`` for bins ``t >= start``: trimmed observed / baseline ratio over the ``window`` bins before."""
    n = volumes.size
    usable = baseline > 0
    ratio = np.where(usable, volumes / np.where(usable, baseline, 1.0), np.nan)
    pad = np.full(window, np.nan)
    rows = sliding_window_view(np.concatenate([pad, ratio]), window)[start:n]
    observed = sliding_window_view(np.concatenate([pad, volumes]), window)[start:n]
    expected = sliding_window_view(np.concatenate([pad, baseline]), window)[start:n]
    order = np.argsort(rows, axis=1)
    count = np.sum(~np.isnan(rows), axis=1, keepdims=True)
    rank = np.arange(window)[None, :]
    kept = (rank >= count // 4) & (rank < count - count // 4)
    observed_sum = np.sum(np.where(kept, np.take_along_axis(observed, order, axis=1), 0.0), axis=1)
    expected_sum = np.sum(np.where(kept, np.take_along_axis(expected, order, axis=1), 0.0), axis=1)
    level = np.full(n, np.nan)
    positive = expected_sum > 0
    level[start:] = np.where(positive, observed_sum / np.where(positive, expected_sum, 1.0), 1.0)
    return level


def _expectations(volumes: np.ndarray, per_day: int, start: int) -> tuple[np.ndarray, ...]:
    """``mu_t``, ``w_K``, ``P`` and ``K`` for bins ``t >= start``, each on the cycle its history allows."""
    n = volumes.size
    history = np.arange(n)
    week = DAYS_PER_WEEK * per_day
    daily = per_day if per_day > 1 else 0
    periods = np.where(history >= week, week, np.where(history >= per_day, daily, 0))
    window = per_day if per_day > 1 else DAYS_PER_WEEK
    expected = np.full(n, np.nan)
    cycles = np.zeros(n, dtype=int)
    for period in sorted({int(p) for p in periods if p > 0}):
        baseline, k = _baseline(volumes, period)
        level = _level(volumes, baseline, window, start)
        here = periods == period
        expected[here] = level[here] * baseline[here]
        cycles[here] = k[here]
    weight = 1.0 + np.array((np.nan, *MEDIAN_VARIANCE))[cycles]
    return expected, weight, periods, cycles


def _dispersion(
    residuals: np.ndarray, log_expected: np.ndarray, targets: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """``phi_t`` and its degrees of freedom per target, from the residuals of the ``window`` bins before."""
    pad = np.full(window, np.nan)
    rows = sliding_window_view(np.concatenate([pad, residuals]), window)[targets]
    logs = sliding_window_view(np.concatenate([pad, log_expected]), window)[targets]
    distance = np.abs(logs - log_expected[targets, None])
    distance[np.isnan(rows) | np.isnan(distance)] = np.inf
    order = np.argsort(distance, axis=1)
    squared = np.take_along_axis(rows, order, axis=1) ** 2
    available = np.sum(np.isfinite(distance), axis=1, keepdims=True)
    near = np.minimum(available, np.maximum(MIN_NEAR, np.ceil(NEAR_FRACTION * available)))
    chosen = np.arange(window)[None, :] < near
    robust = np.full(len(targets), np.nan)
    some = near[:, 0] > 0
    robust[some] = np.nanmedian(np.where(chosen, squared, np.nan)[some], axis=1) / _CHI2_MEDIAN
    kept = chosen & (squared <= TRUNCATION**2 * robust[:, None])
    df = np.sum(kept, axis=1)
    mean_square = np.sum(np.where(kept, squared, 0.0), axis=1) / np.maximum(df, 1)
    return np.maximum(1.0, mean_square / _TRUNCATED_VARIANCE), df


def seasonal_forecast(
    volumes: np.ndarray, per_day: int, z_threshold: float, targets: np.ndarray | None = None
) -> SeasonalForecast:
    """Forecast the ``targets`` bins (default: all) of ``volumes`` from the bins before each.

    Args:
        volumes: Units per bin, consecutive bins.
        per_day: Bins per day (``D``); 1 for daily bins.
        z_threshold: The normal-scale threshold ``tau`` (see the module docstring).
        targets: Indices of the bins to forecast; a bin's forecast never reads the bin itself.

    Returns:
        A :class:`SeasonalForecast` with one entry per target.
    """
    volumes = np.asarray(volumes, dtype=float)
    targets = np.arange(volumes.size) if targets is None else np.asarray(targets, dtype=int)
    window = min(DAYS_PER_WEEK * per_day, MAX_DISPERSION_BINS) if per_day > 1 else MAX_DISPERSION_BINS
    start = max(0, int(targets.min()) - window) if targets.size else volumes.size
    expected, weight, periods, cycles = _expectations(volumes, per_day, start)
    valid = expected > 0
    safe = np.where(valid, expected, 1.0)
    residuals = np.where(valid, (volumes - safe) / np.sqrt(safe * np.where(valid, weight, 1.0)), np.nan)
    log_expected = np.where(valid, np.log(safe), np.nan)
    dispersion, df = _dispersion(residuals, log_expected, targets, window)
    tail = normal_cdf(-z_threshold)
    threshold = -t_ppf(tail, np.maximum(df, 1))
    return SeasonalForecast(
        expected=expected[targets],
        variance=dispersion * expected[targets] * weight[targets],
        dispersion=dispersion,
        threshold=threshold,
        cycle_bins=periods[targets],
        cycles=cycles[targets],
        residuals=df,
    )


def seasonal_scores(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``z = Phi^-1(P(X <= x))`` for ``X`` negative binomial with the given mean and variance.

    Computed as ``-Phi^-1(P(X > x))`` above the mean so neither tail rounds to 1; scores are clipped to
    ``[-MAX_SCORE, MAX_SCORE]``, so a total outage reads ``z = -50`` (a finite number in JSON), not
    ``-inf``. ``variance > expected > 0`` always
    holds for a forecast (``phi >= 1``, ``w_K > 1``); entries without a positive expectation score 0.
    """
    observed, expected, variance = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (observed, expected, variance))
    )
    valid = (expected > 0) & (variance > expected)
    mean = np.where(valid, expected, 1.0)
    var = np.where(valid, variance, 2.0)
    size, success = mean**2 / (var - mean), mean / var
    count = np.floor(np.maximum(observed, 0.0))
    below = valid & (count < mean)
    above = valid & ~(count < mean)
    scores = np.zeros(count.shape)
    log_cdf = nbinom_logcdf(count[below], size[below], success[below])
    scores[below] = normal_ppf_of_log(np.minimum(log_cdf, 0.0))
    if above.any():  # the upper tail imports scipy.stats (see nbinom_logsf): skipped when no bin needs it
        log_sf = nbinom_logsf(count[above], size[above], success[above])
        scores[above] = -normal_ppf_of_log(np.minimum(log_sf, 0.0))
    return np.clip(scores, -MAX_SCORE, MAX_SCORE)


def seasonal_drops(observed: np.ndarray, forecast: SeasonalForecast) -> tuple[np.ndarray, np.ndarray]:
    """Scores and verdicts of ``observed`` counts against their forecasts (untestable bins: False)."""
    scores = seasonal_scores(observed, forecast.expected, forecast.variance)
    gate = np.asarray(observed, dtype=float) < (1.0 - MIN_RELATIVE_DROP) * forecast.expected
    return scores, forecast.testable & gate & (scores < -forecast.threshold)


def cycle_words(bin_seconds: int, cycle: int, per_day: int, cycles: int) -> str:
    """'the same hour of the week in 3 earlier weeks', for the message."""
    unit = "week" if cycle == DAYS_PER_WEEK * per_day else "day"
    slot = {3600: "hour", SECONDS_PER_DAY: "weekday"}.get(bin_seconds, "bin")
    place = "" if slot == "weekday" else f" of the {unit}"
    return f"the same {slot}{place} in {cycles} earlier {unit}{'s' if cycles != 1 else ''}"
