"""The seed's pandas code as written: what xpyrment_sql replaces.

``run_telemetry_checks`` in the seed loads the whole log into memory and then:

* anomaly: ``get_binned_traffic(freq)`` (frame copy, ``dt.floor``, ``groupby().nunique()``, ``pivot``,
  ``fillna``; bins with no rows are missing, not zero) and the z-score test on its row sums;
* chi-square: ``get_cumulative_traffic()`` with its default ``freq="D"`` (a second copy and groupby),
  i.e. the cumsum of per-day active units, so a unit returning on k days is counted k times;
* sequential SRM: the whole frame sorted by time and the SPRT run over rows, not units (vectorised
  here as the seed's detector would be: cumulative sums in log space, one LR per row).

Only the binned active matrix (on the bins it shows) and the anomaly test share the exact
implementations' definitions; ``semantics`` marks the rest as ``"seed"``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.baselines.common import Sprt, chi_square, cli, iso_labels, lr_value, traffic_drop

TIME_COL, VARIANT_COL = "ts", "variant"


def get_binned_traffic(df: pd.DataFrame, time_col: str, variant_col: str, freq: str) -> pd.DataFrame:
    """The seed's ``get_binned_traffic``, verbatim apart from being a function."""
    binned_df = df.copy()
    binned_df["binned_time"] = pd.to_datetime(binned_df[time_col]).dt.floor(freq)
    unit_col = "unit_id" if "unit_id" in binned_df.columns else binned_df.columns[0]
    grouped = binned_df.groupby(["binned_time", variant_col])[unit_col].nunique().reset_index()
    pivoted = grouped.pivot(index="binned_time", columns=variant_col, values=unit_col)
    return pivoted.fillna(0.0)


def sequential_srm(df: pd.DataFrame, ratios: list[float]) -> dict[str, Any]:
    """The seed's ``check_sequential_srm`` with ``target_treatment_ratio = ratios[1] / sum(ratios)``."""
    unique_variants = sorted(df[VARIANT_COL].dropna().unique())
    if len(unique_variants) != 2:
        return {"skipped": "needs exactly two variants", "stopped_index": -1, "last_lr": None}
    control_val, treatment_val = unique_variants[0], unique_variants[1]
    for v in unique_variants:
        if "ctrl" in str(v).lower() or "control" in str(v).lower():
            control_val = v
            treatment_val = next(x for x in unique_variants if x != v)
            break
    sorted_df = df.dropna(subset=[TIME_COL, VARIANT_COL]).sort_values(by=TIME_COL)
    assignments = np.where(sorted_df[VARIANT_COL] == treatment_val, 1, 0)
    p0 = ratios[1] / sum(ratios)
    test = Sprt.of(p0)
    log_lr = test.log_lr(np.cumsum(assignments), np.arange(1, assignments.size + 1))
    with np.errstate(over="ignore"):
        running = np.exp(log_lr)
    hits = np.flatnonzero(running >= 1.0 / 0.01)
    stopped = int(hits[0]) if hits.size else -1
    return {
        "srm_detected": stopped >= 0,
        "stopped_index": stopped,
        "control": str(control_val),
        "treatment": str(treatment_val),
        "p0": p0,
        "sequence_length": int(assignments.size),
        "last_lr": lr_value(float(log_lr[-1])) if log_lr.size else None,
    }


def run(path: str, freq: str, ratios: list[float], *, overcount: bool = False) -> dict[str, Any]:
    """The seed's ``run_telemetry_checks`` on ``pd.read_parquet(path)``.

    With ``overcount`` (off when timed) it also counts the true distinct units per variant and
    reports how far the seed's cumulative total overshoots them.
    """
    df = pd.read_parquet(path)
    binned = get_binned_traffic(df, TIME_COL, VARIANT_COL, freq)
    anomaly = traffic_drop(binned.sum(axis=1).values)
    daily = get_binned_traffic(df, TIME_COL, VARIANT_COL, "D").cumsum(axis=0)
    daily = daily.reindex(columns=sorted(daily.columns))
    variants = [str(v) for v in daily.columns]
    chi = chi_square([int(x) for x in daily.iloc[-1].values], ratios, variants)
    sprt: dict[str, Any] = {"skipped": "not two variants", "stopped_index": -1, "last_lr": None}
    if len(sorted(df[VARIANT_COL].dropna().unique())) == 2:
        sprt = sequential_srm(df, ratios)
    binned = binned.reindex(columns=sorted(binned.columns))
    cumulative = binned.cumsum(axis=0).to_numpy(dtype=np.int64)
    extra: dict[str, Any] = {
        "seed_units_total": int(cumulative[-1].sum()) if len(cumulative) else 0,
        "chi_square_freq": "D",
        "sprt_sequence": "rows sorted by ts",
    }
    if overcount:
        units = int(df.groupby(VARIANT_COL)["unit_id"].nunique().sum())
        extra["true_units_total"] = units
        extra["overcount"] = extra["seed_units_total"] / units - 1 if units else 0.0
    return {
        "impl": "pandas_seed",
        "freq": freq,
        "semantics": {"active": "exact", "cumulative": "seed", "chi_square": "seed", "sprt": "seed"},
        "bins": iso_labels(binned.index.to_numpy()),
        "variants": [str(v) for v in binned.columns],
        "active": binned.to_numpy(dtype=np.int64).tolist(),
        "cumulative": cumulative.tolist(),
        "anomaly": anomaly,
        "chi_square": chi,
        "sprt": sprt,
        "extra": extra,
    }


if __name__ == "__main__":
    cli(functools.update_wrapper(functools.partial(run, overcount=True), run))
