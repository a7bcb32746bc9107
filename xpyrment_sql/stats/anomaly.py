"""Traffic-drop detection on per-bin unit totals: the dispatcher and the seed's z-score test.

:func:`drop_test` runs the seasonal test (``method="seasonal"``, the default; see
:mod:`xpyrment_sql.stats.seasonal`) or the seed's z-score test (``method="zscore"``); the seasonal test
falls back to the z-score test when the bin width has no daily or weekly cycle (weekly bins, widths
that do not divide a day) or before one full cycle of history.

The seed's z-score test: let ``x_t`` be the units seen in bin ``t`` (summed over variants) and ``T``
the latest bin. With ``K = min(T - 1, W)`` preceding bins as the baseline,

    mu = mean(x_{T-K} .. x_{T-1}),   sigma = sd(x_{T-K} .. x_{T-1}) with ddof = 1,
    Z  = (x_T - mu) / sigma,

a drop is flagged when ``Z < -z_threshold``. When ``sigma = 0`` the z-score is undefined and the
fallback flags ``x_T < mu * (1 - drop_threshold)``. Fewer than 3 bins give no verdict.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import TrafficAnomalyResult
from xpyrment_sql.stats.seasonal import (
    SEASONAL_Z_THRESHOLD,
    SeasonalForecast,
    bins_per_day,
    cycle_words,
    seasonal_drops,
    seasonal_forecast,
)

MIN_BINS = 3
DROP_METHODS = ("seasonal", "zscore")
ZSCORE_THRESHOLD = 3.0
DEFAULT_THRESHOLDS = {"seasonal": SEASONAL_Z_THRESHOLD, "zscore": ZSCORE_THRESHOLD}


def check_drop_method(method: str) -> str:
    """Return ``method`` when it is one of ``DROP_METHODS``, else raise ``ParameterError``."""
    if method not in DROP_METHODS:
        accepted = ", ".join(repr(m) for m in DROP_METHODS)
        raise ParameterError(f"method={method!r} is not a traffic-drop test; use one of {accepted}")
    return method


def check_bin_seconds(bin_seconds: int) -> int:
    """Return ``bin_seconds`` when it is a positive integer (the bin width), else raise ``ParameterError``."""
    if isinstance(bin_seconds, bool) or not isinstance(bin_seconds, (int, np.integer)) or bin_seconds <= 0:
        raise ParameterError(f"bin_seconds={bin_seconds!r} must be a positive integer (bin width in seconds)")
    return int(bin_seconds)


def check_anomaly_parameters(window: int, z_threshold: float | None, drop_threshold: float) -> None:
    """Reject a window below 2, a non-positive ``z_threshold``, or ``drop_threshold`` outside (0, 1).

    ``z_threshold=None`` (the method's calibrated default) is accepted.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ParameterError(f"window={window!r} must be an integer >= 2 (bins in the baseline)")
    if z_threshold is not None and not z_threshold > 0:
        raise ParameterError(f"z_threshold={z_threshold!r} must be > 0")
    if not 0 < drop_threshold < 1:
        raise ParameterError(f"drop_threshold={drop_threshold!r} must be between 0 and 1 (exclusive)")


def traffic_drop_test(
    volumes: np.ndarray, window: int = 7, z_threshold: float = 3.0, drop_threshold: float = 0.5
) -> TrafficAnomalyResult:
    """Test whether the last entry of ``volumes`` is a drop against the preceding ``window`` entries.

    Examples:
        >>> res = traffic_drop_test(np.array([100, 104, 98, 101, 40]), window=4)
        >>> res.anomaly_detected, res.historical_mean, res.historical_std, res.z_score
        (True, 100.75, 2.5, -24.3)
    """
    check_anomaly_parameters(window, z_threshold, drop_threshold)
    volumes = np.asarray(volumes, dtype=float)
    if volumes.size == 0:
        return TrafficAnomalyResult(False, 0.0, 0.0, 0.0, 0.0, "Traffic DataFrame is empty.")
    latest = float(volumes[-1])
    if volumes.size < MIN_BINS:
        mean = float(np.mean(volumes[:-1])) if volumes.size > 1 else 0.0
        return TrafficAnomalyResult(
            False,
            latest,
            mean,
            0.0,
            0.0,
            "Insufficient history to stably calculate baseline standard deviation "
            f"(need at least {MIN_BINS} bins).",
        )
    k = min(volumes.size - 1, window)
    baseline = volumes[-(k + 1) : -1]
    mean = float(np.mean(baseline))
    std = float(np.std(baseline, ddof=1))
    if std == 0.0:
        anomaly = latest < mean * (1.0 - drop_threshold)
        return TrafficAnomalyResult(
            bool(anomaly),
            latest,
            mean,
            std,
            0.0,
            f"Degenerate variance (std=0). Drop check fallback applied: {anomaly}.",
        )
    z_score = (latest - mean) / std
    anomaly = z_score < -z_threshold
    return TrafficAnomalyResult(
        bool(anomaly),
        latest,
        mean,
        std,
        float(z_score),
        f"Z-score = {z_score:.4f}. Anomaly detected: {anomaly}.",
    )


def drop_test(
    volumes: np.ndarray,
    *,
    bin_seconds: int,
    method: str = "seasonal",
    window: int = 7,
    z_threshold: float | None = None,
    drop_threshold: float = 0.5,
) -> TrafficAnomalyResult:
    """Test whether the last entry of ``volumes`` (a complete bin) is a traffic drop.

    Args:
        volumes: Units per bin, consecutive bins of ``bin_seconds`` each; the last one is judged and
            is never part of its own baseline, level or dispersion.
        bin_seconds: The bin width in seconds; it gives the cycles (``86400 // bin_seconds`` bins a
            day when the width divides a day; the week for daily bins; none for wider bins).
        method: ``"seasonal"`` (the same bin in earlier cycles, see :mod:`.seasonal`) or
            ``"zscore"`` (the seed's test against the preceding ``window`` bins).
        window: Bins in the z-score test's baseline.
        z_threshold: A drop is ``z < -z_threshold``; ``None`` takes the method's calibrated default
            (``SEASONAL_Z_THRESHOLD`` or ``ZSCORE_THRESHOLD``). For the seasonal test it is the
            normal-scale level, widened to a Student-t quantile for the estimated dispersion.
        drop_threshold: The z-score test's fallback when its baseline has zero variance.

    Returns:
        A :class:`TrafficAnomalyResult`; ``method`` says which test ran (``"zscore"`` when the
        seasonal test had less than one cycle of history or no cycle at this bin width).

    Raises:
        ParameterError: for an unknown ``method``, a bad ``bin_seconds``, ``window``, threshold.

    Examples:
        Six-hour bins (four a day) over three and a half days; the last bin, the second of its day,
        is judged against that bin in the three earlier days:

        >>> import numpy as np
        >>> units = np.array([103, 295, 408, 198, 96, 306, 393, 201, 102, 297, 405, 204, 99, 60])
        >>> res = drop_test(units, bin_seconds=6 * 3600)
        >>> res.method, res.anomaly_detected, round(res.historical_mean)
        ('seasonal', True, 297)
        >>> drop_test(np.append(units[:-1], 290), bin_seconds=6 * 3600).anomaly_detected
        False
    """
    check_drop_method(method)
    per_day = bins_per_day(check_bin_seconds(bin_seconds))
    threshold = DEFAULT_THRESHOLDS[method] if z_threshold is None else z_threshold
    check_anomaly_parameters(window, threshold, drop_threshold)
    volumes = np.asarray(volumes, dtype=float)
    if method == "seasonal" and per_day is not None and volumes.size > 1:
        forecast = seasonal_forecast(volumes, per_day, threshold, np.array([volumes.size - 1]))
        if forecast.testable[0]:
            return _seasonal_result(float(volumes[-1]), forecast, bin_seconds, per_day)
    fallback = ZSCORE_THRESHOLD if z_threshold is None else z_threshold
    result = traffic_drop_test(volumes, window, fallback, drop_threshold)
    return dataclasses.replace(result, threshold=float(fallback))


def _seasonal_result(
    latest: float, forecast: SeasonalForecast, bin_seconds: int, per_day: int
) -> TrafficAnomalyResult:
    """The record of a seasonal verdict on one bin (``forecast`` holds that bin only)."""
    scores, drops = seasonal_drops(np.array([latest]), forecast)
    expected, sd, z = float(forecast.expected[0]), float(np.sqrt(forecast.variance[0])), float(scores[0])
    threshold, cycle = float(forecast.threshold[0]), int(forecast.cycle_bins[0])
    cycles = int(forecast.cycles[0])
    anomaly = bool(drops[0])
    verdict = f"z = {z:.1f} < -{threshold:.2f}): a drop" if anomaly else f"z = {z:.1f}): no drop"
    return TrafficAnomalyResult(
        anomaly,
        latest,
        expected,
        sd,
        z,
        f"{latest:,.0f} (unit, variant) pairs vs {expected:,.0f} expected from "
        f"{cycle_words(bin_seconds, cycle, per_day, cycles)} (sd {sd:,.1f}, {verdict}.",
        method="seasonal",
        threshold=threshold,
        cycle_bins=cycle,
        cycles=cycles,
        dispersion=float(forecast.dispersion[0]),
    )


def zscore_baselines(volumes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (ddof 1) of the preceding ``min(t, window)`` bins, for every bin ``t`` (NaN below 2)."""
    volumes = np.asarray(volumes, dtype=float)
    n = volumes.size
    mean, sd = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(MIN_BINS - 1, min(n, window)):
        mean[t], sd[t] = np.mean(volumes[:t]), np.std(volumes[:t], ddof=1)
    if n > window:
        rows = sliding_window_view(volumes[:-1], window)
        mean[window:], sd[window:] = rows.mean(axis=1), rows.std(axis=1, ddof=1)
    return mean, sd


def zscore_drops(
    observed: np.ndarray, mean: np.ndarray, sd: np.ndarray, z_threshold: float, drop_threshold: float
) -> np.ndarray:
    """The seed's verdicts: ``(x - mean) / sd < -z_threshold``, or ``x < mean (1 - drop)`` when ``sd = 0``."""
    observed = np.asarray(observed, dtype=float)
    flat = sd == 0
    z = (observed - mean) / np.where(flat, 1.0, sd)
    drops: np.ndarray = np.where(flat, observed < mean * (1.0 - drop_threshold), z < -z_threshold)
    judged: np.ndarray = drops & ~np.isnan(mean)
    return judged


def drop_flags(
    volumes: np.ndarray,
    window: int = 7,
    z_threshold: float | None = None,
    drop_threshold: float = 0.5,
    *,
    bin_seconds: int | None = None,
    method: str = "seasonal",
) -> np.ndarray:
    """Which bins the drop test flags when each bin in turn is the latest, for charts.

    ``flags[t]`` is :func:`drop_test` applied to ``volumes[: t + 1]``: the verdict a monitor running at
    the end of bin ``t`` would have given, computed for all bins at once. ``bin_seconds=None`` (the
    width unknown, as in the seed's positional calls ``drop_flags(volumes, window, z, drop)``) has no
    cycle, so the z-score test runs. The first ``MIN_BINS - 1`` bins are never flagged.
    """
    check_drop_method(method)
    per_day = None if bin_seconds is None else bins_per_day(check_bin_seconds(bin_seconds))
    threshold = DEFAULT_THRESHOLDS[method] if z_threshold is None else z_threshold
    check_anomaly_parameters(window, threshold, drop_threshold)
    volumes = np.asarray(volumes, dtype=float)
    fallback = ZSCORE_THRESHOLD if z_threshold is None else z_threshold
    flags = zscore_drops(volumes, *zscore_baselines(volumes, window), fallback, drop_threshold)
    if method == "seasonal" and per_day is not None and volumes.size > 1:
        forecast = seasonal_forecast(volumes, per_day, threshold)
        _, drops = seasonal_drops(volumes, forecast)
        flags = np.where(forecast.testable, drops, flags)
    return flags
