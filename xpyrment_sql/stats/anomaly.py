"""Traffic-drop detection on per-bin unit totals (the seed's z-score test).

Let ``x_t`` be the units seen in bin ``t`` (summed over variants) and ``T`` the latest bin. With
``K = min(T - 1, W)`` preceding bins as the baseline,

    mu = mean(x_{T-K} .. x_{T-1}),   sigma = sd(x_{T-K} .. x_{T-1}) with ddof = 1,
    Z  = (x_T - mu) / sigma,

a drop is flagged when ``Z < -z_threshold``. When ``sigma = 0`` the z-score is undefined and the
fallback flags ``x_T < mu * (1 - drop_threshold)``. Fewer than 3 bins give no verdict.
"""

from __future__ import annotations

import numpy as np

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import TrafficAnomalyResult

MIN_BINS = 3


def check_anomaly_parameters(window: int, z_threshold: float, drop_threshold: float) -> None:
    """Reject a window below 2, a non-positive ``z_threshold``, or ``drop_threshold`` outside (0, 1)."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ParameterError(f"window={window!r} must be an integer >= 2 (bins in the baseline)")
    if not z_threshold > 0:
        raise ParameterError(f"z_threshold={z_threshold!r} must be > 0")
    if not 0 < drop_threshold < 1:
        raise ParameterError(f"drop_threshold={drop_threshold!r} must be between 0 and 1 (exclusive)")


def traffic_drop_test(
    volumes: np.ndarray, window: int = 7, z_threshold: float = 3.0, drop_threshold: float = 0.5
) -> TrafficAnomalyResult:
    """Test whether the last entry of ``volumes`` is a drop against the preceding ``window`` entries."""
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


def drop_flags(
    volumes: np.ndarray, window: int = 7, z_threshold: float = 3.0, drop_threshold: float = 0.5
) -> np.ndarray:
    """Which bins the drop test flags when each bin in turn is the latest, for charts.

    ``flags[t]`` is :func:`traffic_drop_test` applied to ``volumes[: t + 1]``: the verdict a monitor
    running at the end of bin ``t`` would have given. The first ``MIN_BINS - 1`` bins are never
    flagged (no baseline yet).
    """
    check_anomaly_parameters(window, z_threshold, drop_threshold)
    volumes = np.asarray(volumes, dtype=float)
    return np.array(
        [
            traffic_drop_test(volumes[: t + 1], window, z_threshold, drop_threshold).anomaly_detected
            for t in range(volumes.size)
        ],
        dtype=bool,
    )
