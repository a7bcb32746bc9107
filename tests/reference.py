"""Plain pandas/numpy reference implementations of the seed's monitoring computations.

They follow the seed library's pandas code (``get_binned_traffic``, ``check_traffic_anomaly``,
``check_live_srm``, ``check_sequential_srm``) with the deliberate semantic changes of ``xpyrment_sql``:

* every bin from the first to the last observed is present (empty bins are 0, the seed dropped them);
* the drop test judges the latest complete bin: the last bin, which holds the latest exposure, is
  still in progress and is left out;
* ``count="new"`` counts each (variant, unit) pair only in the bin of its first exposure there;
* cumulative traffic is the running sum of the ``new`` counts (last row = distinct units per variant);
* the SPRT runs over (variant, unit) pairs at their first exposure, ordered by
  (first timestamp, unit id, variant), and the per-bin likelihood ratios are read at the end of bins.

Nothing here calls the library, Ibis or DuckDB: it is meant to be obviously right, not fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

TIME = "ts"
UNIT = "unit_id"
VARIANT = "variant"


def _clean(df: pd.DataFrame, time_col: str, unit_col: str, variant_col: str) -> pd.DataFrame:
    """Rows reduced to (ts, unit, variant) with naive-UTC timestamps; incomplete rows dropped."""
    rows = df[[time_col, unit_col, variant_col]].dropna()
    ts = pd.to_datetime(rows[time_col], utc=True).dt.tz_convert(None)
    return pd.DataFrame(
        {"ts": ts.to_numpy(), "unit": rows[unit_col].to_numpy(), "variant": rows[variant_col]}
    )


def binned_traffic(
    df: pd.DataFrame,
    freq: str = "D",
    count: str = "active",
    time_col: str = TIME,
    unit_col: str = UNIT,
    variant_col: str = VARIANT,
) -> pd.DataFrame:
    """Distinct units per (bin, variant) on the full grid of bins; columns are the sorted variants."""
    rows = _clean(df, time_col, unit_col, variant_col)
    rows["bin"] = rows["ts"].dt.floor(freq)
    variants = sorted(rows["variant"].unique())
    full = pd.date_range(rows["bin"].min(), rows["bin"].max(), freq=freq)
    if count == "new":
        first_bin = rows.groupby(["variant", "unit"])["bin"].transform("min")
        rows = rows[rows["bin"] == first_bin]
    elif count != "active":
        raise ValueError(count)
    grouped = rows.groupby(["bin", "variant"])["unit"].nunique().reset_index()
    pivoted = grouped.pivot(index="bin", columns="variant", values="unit")
    return pivoted.reindex(index=full, columns=variants).fillna(0).astype(np.int64)


def cumulative_traffic(df: pd.DataFrame, freq: str = "D", **columns: str) -> pd.DataFrame:
    """Running sum of first exposures per variant."""
    return binned_traffic(df, freq, "new", **columns).cumsum(axis=0)


def distinct_units(df: pd.DataFrame, unit_col: str = UNIT, variant_col: str = VARIANT) -> pd.Series:
    """``COUNT(DISTINCT unit)`` per variant, indexed by the sorted variant names."""
    rows = df[[unit_col, variant_col]].dropna()
    return rows.groupby(variant_col)[unit_col].nunique().sort_index()


def traffic_anomaly(
    df: pd.DataFrame,
    freq: str = "D",
    window: int = 7,
    z_threshold: float = 3.0,
    drop_threshold: float = 0.5,
    **columns: str,
) -> dict:
    """The seed's z-score drop test on per-bin totals of the ACTIVE matrix (zero bins included).

    Judged on complete bins only: without ``until`` the evaluation instant is the latest exposure, so
    the last bin (which holds it) is unfinished and left out; the bin before it is judged.
    """
    binned = binned_traffic(df, freq, "active", **columns).iloc[:-1]
    if binned.empty:
        return {
            "anomaly_detected": False,
            "latest_volume": 0.0,
            "historical_mean": 0.0,
            "historical_std": 0.0,
            "z_score": 0.0,
            "message": "Traffic DataFrame is empty.",
        }
    volumes = binned.sum(axis=1).to_numpy(dtype=float)
    n_bins = len(volumes)
    if n_bins < 3:
        return {
            "anomaly_detected": False,
            "latest_volume": float(volumes[-1]),
            "historical_mean": float(np.mean(volumes[:-1])) if n_bins > 1 else 0.0,
            "historical_std": 0.0,
            "z_score": 0.0,
            "message": "Insufficient history to stably calculate baseline standard deviation "
            "(need at least 3 bins).",
        }
    latest = float(volumes[-1])
    k = min(n_bins - 1, window)
    baseline = volumes[-(k + 1) : -1]
    mean = float(np.mean(baseline))
    std = float(np.std(baseline, ddof=1))
    if std == 0.0:
        anomaly = latest < mean * (1.0 - drop_threshold)
        return {
            "anomaly_detected": bool(anomaly),
            "latest_volume": latest,
            "historical_mean": mean,
            "historical_std": std,
            "z_score": 0.0,
            "message": f"Degenerate variance (std=0). Drop check fallback applied: {anomaly}.",
        }
    z_score = (latest - mean) / std
    anomaly = z_score < -z_threshold
    return {
        "anomaly_detected": bool(anomaly),
        "latest_volume": latest,
        "historical_mean": mean,
        "historical_std": std,
        "z_score": float(z_score),
        "message": f"Z-score = {z_score:.4f}. Anomaly detected: {anomaly}.",
    }


def _ratio_list(expected_ratios: Sequence[float] | Mapping, variants: Sequence) -> list[float]:
    if isinstance(expected_ratios, Mapping):
        return [float(expected_ratios[v]) for v in variants]
    return [float(r) for r in expected_ratios]


def live_srm(
    df: pd.DataFrame,
    expected_ratios: Sequence[float] | Mapping,
    alpha: float = 0.001,
    unit_col: str = UNIT,
    variant_col: str = VARIANT,
) -> dict:
    """scipy ``chisquare`` of distinct units per sorted variant against the normalised ratios."""
    units = distinct_units(df, unit_col, variant_col)
    observed = [int(n) for n in units.to_numpy()]
    ratios = _ratio_list(expected_ratios, list(units.index))
    total = sum(observed)
    expected = [r * total / sum(ratios) for r in ratios]
    statistic, p_value = stats.chisquare(f_obs=observed, f_exp=expected)
    if len(observed) < 2:
        statistic, p_value = 0.0, 1.0  # one variant: no split to mismatch (scipy gives NaN)
    return {
        "srm_detected": bool(p_value < alpha),
        "p_value": float(p_value),
        "chi_square": float(statistic),
        "observed_counts": observed,
        "expected_counts": expected,
        "variants": list(units.index),
    }


def control_and_treatment(variants: Sequence) -> tuple:
    """The seed's rule: first sorted name containing ctrl/control is control, else the first name."""
    names = sorted(variants)
    for name in names:
        lowered = str(name).lower()
        if "ctrl" in lowered or "control" in lowered:
            return name, next(v for v in names if v != name)
    return names[0], names[1]


def first_exposures(
    df: pd.DataFrame,
    time_col: str = TIME,
    unit_col: str = UNIT,
    variant_col: str = VARIANT,
    order: Sequence[str] = ("ts", "unit", "variant"),
) -> pd.DataFrame:
    """Each (variant, unit) pair at its first exposure, sorted by ``order`` (the SPRT sequence)."""
    rows = _clean(df, time_col, unit_col, variant_col)
    firsts = rows.groupby(["variant", "unit"], as_index=False)["ts"].min()
    return firsts.sort_values(list(order), kind="mergesort").reset_index(drop=True)


def sequential_srm(
    df: pd.DataFrame,
    target_treatment_ratio: float = 0.5,
    delta: float = 0.02,
    alpha: float = 0.01,
    freq: str = "D",
    order: Sequence[str] = ("ts", "unit", "variant"),
) -> dict:
    """The mixture SPRT unit by unit: running log products of Bernoulli likelihood ratios."""
    firsts = first_exposures(df, order=order)
    control, treatment = control_and_treatment(firsts["variant"].unique())
    y = (firsts["variant"] == treatment).to_numpy()
    p0 = target_treatment_ratio
    log_terms = {}
    for name, p1 in (("up", p0 + delta), ("down", p0 - delta)):
        per_unit = np.where(y, math.log(p1 / p0), math.log((1 - p1) / (1 - p0)))
        log_terms[name] = np.cumsum(per_unit)
    log_lr = np.logaddexp(log_terms["up"], log_terms["down"]) + math.log(0.5)
    crossed = np.flatnonzero(log_lr >= math.log(1.0 / alpha))
    stopped_index = int(crossed[0]) if crossed.size else -1

    all_bins = _clean(df, TIME, UNIT, VARIANT)["ts"].dt.floor(freq)
    bins = pd.date_range(all_bins.min(), all_bins.max(), freq=freq)
    first_bins = firsts["ts"].dt.floor(freq).to_numpy()
    running_log = []
    for start in bins:
        seen = int(np.sum(first_bins <= np.datetime64(start)))
        running_log.append(log_lr[seen - 1])
    return {
        "srm_detected": stopped_index >= 0,
        "stopped_index": stopped_index,
        "stopped_at": firsts["ts"].iloc[stopped_index] if stopped_index >= 0 else None,
        "running_log_likelihood_ratios": np.array(running_log),
        "running_likelihood_ratios": np.exp(np.array(running_log)),
        "per_unit_log_likelihood_ratios": log_lr,
        "control": control,
        "treatment": treatment,
        "bins": bins,
    }


def telemetry_alerts(
    df: pd.DataFrame,
    expected_ratios: Sequence[float],
    freq: str = "D",
    window: int = 7,
    z_threshold: float = 3.0,
    delta: float = 0.02,
) -> list[str]:
    """Which alerts ``run_telemetry_checks`` should raise, in order."""
    alerts = []
    if traffic_anomaly(df, freq, window, z_threshold)["anomaly_detected"]:
        alerts.append("TRAFFIC_DROP_ANOMALY")
    if live_srm(df, expected_ratios, alpha=0.001)["srm_detected"]:
        alerts.append("SRM_SHUTOFF_TRIGGERED")
    variants = sorted(df[VARIANT].dropna().unique())
    if len(variants) == 2:
        _, treatment = control_and_treatment(variants)
        ratios = _ratio_list(expected_ratios, variants)
        p0 = ratios[variants.index(treatment)] / sum(ratios)
        if p0 - delta > 0 and p0 + delta < 1:
            result = sequential_srm(df, p0, delta, alpha=0.01, freq=freq)
            if result["srm_detected"]:
                alerts.append("SEQUENTIAL_SRM_TRIGGERED")
    return alerts
