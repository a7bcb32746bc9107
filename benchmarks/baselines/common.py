"""What every baseline shares: bin arithmetic, the seed's statistics, the output dict and a tiny CLI.

The baselines differ only in how they aggregate rows (pandas, Polars, DuckDB SQL, xpyrment_sql); the
statistics on the small aggregated matrix are the seed's, written once here with numpy/scipy and
independently of ``xpyrment_sql`` so that the library's numbers are checked, not copied.

Output dict of ``run(path, freq, ratios)`` (JSON-able)::

    impl, freq, semantics       # semantics: {"active", "cumulative", "chi_square", "sprt"} ->
                                #   "exact" | "seed" | "approx"
    bins, variants              # bin start labels (ISO, UTC) and sorted variant names
    active, cumulative          # bins x variants int matrices
    anomaly                     # z-score test on active row sums (window 7, z 3, drop 0.5)
    chi_square                  # scipy chisquare on distinct units per variant, alpha 0.001
    sprt                        # mixture SPRT (delta 0.02, alpha 0.01): stopped_index, log_lr, last_lr
    extra                       # implementation-specific facts (e.g. the seed's unit total)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

WINDOW, Z_THRESHOLD, DROP_THRESHOLD = 7, 3.0, 0.5
SRM_ALPHA, SPRT_DELTA, SPRT_ALPHA = 0.001, 0.02, 0.01
EXACT_SEMANTICS = {"active": "exact", "cumulative": "exact", "chi_square": "exact", "sprt": "exact"}

_ALIAS = re.compile(r"^(?P<n>[1-9]\d*)?(?P<unit>min|T|h|H|D|W)$")
_UNIT_SECONDS = {"min": 60, "T": 60, "h": 3_600, "H": 3_600, "D": 86_400, "W": 7 * 86_400}


@dataclasses.dataclass(frozen=True)
class Bins:
    """Fixed-width UTC bins: ``key = floor((epoch_seconds + origin) / width)``.

    ``origin`` is 3 days for weeks so that they start on Monday (1970-01-01 was a Thursday).
    """

    width: int
    origin: int

    def labels(self, first_key: int, count: int) -> list[str]:
        """ISO start times of ``count`` consecutive bins from ``first_key``."""
        starts = (np.arange(first_key, first_key + count, dtype=np.int64) * self.width - self.origin).astype(
            "datetime64[s]"
        )
        return [str(s) for s in np.datetime_as_string(starts, unit="s")]


def parse_freq(freq: str) -> Bins:
    """Bins for a pandas-style alias: ``[n]min``, ``[n]h``, ``[n]D`` or ``[n]W`` (UTC only)."""
    match = _ALIAS.match(freq)
    if match is None:
        raise ValueError(f"freq={freq!r} is not one of [n]min, [n]h, [n]D, [n]W")
    unit = match["unit"]
    width = int(match["n"] or 1) * _UNIT_SECONDS[unit]
    return Bins(width=width, origin=3 * 86_400 if unit == "W" else 0)


def iso_labels(stamps: Any) -> list[str]:
    """ISO strings (second resolution, like :meth:`Bins.labels`) of naive UTC timestamps."""
    values = np.asarray(stamps, dtype="datetime64[s]")
    return [str(s) for s in np.datetime_as_string(values, unit="s")]


def dense(
    keys: np.ndarray, variant_of_row: Sequence[Any], columns: Sequence[np.ndarray]
) -> tuple[int, tuple[str, ...], list[np.ndarray]]:
    """Place long counts (one row per non-empty (bin key, variant)) on the full bins x variants grid.

    Returns the first key, the sorted variants and one zero-filled int64 matrix per value column.
    """
    variants = tuple(sorted({str(v) for v in variant_of_row}))
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size == 0:
        return 0, (), [np.zeros((0, 0), dtype=np.int64) for _ in columns]
    first = int(keys.min())
    shape = (int(keys.max()) - first + 1, len(variants))
    position = {v: i for i, v in enumerate(variants)}
    col = np.fromiter((position[str(v)] for v in variant_of_row), dtype=np.int64, count=keys.size)
    out = []
    for values in columns:
        matrix = np.zeros(shape, dtype=np.int64)
        matrix[keys - first, col] = np.asarray(values, dtype=np.int64)
        out.append(matrix)
    return first, variants, out


def traffic_drop(
    volumes: np.ndarray, window: int = WINDOW, z_threshold: float = Z_THRESHOLD, drop: float = DROP_THRESHOLD
) -> dict[str, Any]:
    """The seed's z-score test of the last bin's volume against the ``window`` bins before it."""
    volumes = np.asarray(volumes, dtype=float)
    if volumes.size == 0:
        return {
            "anomaly_detected": False,
            "latest_volume": 0.0,
            "historical_mean": 0.0,
            "historical_std": 0.0,
            "z_score": 0.0,
        }
    latest = float(volumes[-1])
    if volumes.size < 3:
        mean = float(np.mean(volumes[:-1])) if volumes.size > 1 else 0.0
        return {
            "anomaly_detected": False,
            "latest_volume": latest,
            "historical_mean": mean,
            "historical_std": 0.0,
            "z_score": 0.0,
        }
    k = min(volumes.size - 1, window)
    baseline = volumes[-(k + 1) : -1]
    mean, std = float(np.mean(baseline)), float(np.std(baseline, ddof=1))
    if std == 0.0:
        detected, z_score = latest < mean * (1.0 - drop), 0.0
    else:
        z_score = (latest - mean) / std
        detected = z_score < -z_threshold
    return {
        "anomaly_detected": bool(detected),
        "latest_volume": latest,
        "historical_mean": mean,
        "historical_std": std,
        "z_score": float(z_score),
    }


def shares(ratios: Sequence[float], variants: Sequence[str]) -> np.ndarray:
    """Designed shares aligned with the sorted variants (ratios are given in that order)."""
    if len(ratios) != len(variants):
        raise ValueError(f"{len(ratios)} ratios for {len(variants)} variants {list(variants)}")
    values = np.asarray(ratios, dtype=float)
    return values / values.sum()


def chi_square(observed: Sequence[int], ratios: Sequence[float], variants: Sequence[str]) -> dict[str, Any]:
    """Pearson's goodness of fit of ``observed`` units per variant against the designed shares."""
    counts = np.asarray(observed, dtype=float)
    if counts.size == 0:
        return {"srm_detected": False, "p_value": 1.0, "statistic": 0.0, "observed": []}
    total = counts.sum()
    statistic, p_value = 0.0, 1.0
    if total > 0:
        statistic, p_value = stats.chisquare(f_obs=counts, f_exp=shares(ratios, variants) * total)
    return {
        "srm_detected": bool(p_value < SRM_ALPHA),
        "p_value": float(p_value),
        "statistic": float(statistic),
        "observed": [int(c) for c in counts],
    }


def find_control(variants: Sequence[str]) -> tuple[str, str]:
    """``(control, treatment)``: first sorted name containing 'ctrl'/'control', else the first name."""
    for name in variants:
        if "ctrl" in name.lower() or "control" in name.lower():
            return name, next(v for v in variants if v != name)
    return variants[0], variants[1]


@dataclasses.dataclass(frozen=True)
class Sprt:
    """The mixture SPRT's per-unit log-likelihood increments and its log threshold."""

    a_up: float
    b_up: float
    a_dn: float
    b_dn: float
    threshold: float

    @classmethod
    def of(cls, p0: float, delta: float = SPRT_DELTA, alpha: float = SPRT_ALPHA) -> Sprt:
        """Treatment adds ``log(p1/p0)``, control ``log((1-p1)/(1-p0))``, for ``p1 = p0 +/- delta``."""
        up, dn = p0 + delta, p0 - delta
        return cls(
            math.log(up / p0),
            math.log((1 - up) / (1 - p0)),
            math.log(dn / p0),
            math.log((1 - dn) / (1 - p0)),
            math.log(1.0 / alpha),
        )

    def log_lr(self, k: np.ndarray, n: np.ndarray) -> np.ndarray:
        """``log LR`` after ``n`` units of which ``k`` are treatment."""
        k = np.asarray(k, dtype=float)
        rest = np.asarray(n, dtype=float) - k
        return np.logaddexp(k * self.a_up + rest * self.b_up, k * self.a_dn + rest * self.b_dn) + math.log(
            0.5
        )

    def candidate_bins(self, new_t: np.ndarray, new_n: np.ndarray) -> tuple[int, int] | None:
        """Bins that can hold the first crossing, bounded from per-bin first-exposure counts.

        Within a bin the up (down) log-likelihood is largest once all its treatment (control) units
        came first, so no order inside bin ``t`` can cross unless that bound does; the search ends
        at the first bin whose end-of-bin LR crosses.
        """
        j, m = np.asarray(new_t, dtype=float), np.asarray(new_n, dtype=float)
        k_s, n_s = np.cumsum(j) - j, np.cumsum(m) - m
        up = (k_s + j) * self.a_up + (n_s - k_s) * self.b_up
        dn = k_s * self.a_dn + (n_s - k_s + m - j) * self.b_dn
        possible = np.flatnonzero(np.logaddexp(up, dn) + math.log(0.5) >= self.threshold)
        if possible.size == 0:
            return None
        crossed = np.flatnonzero(self.log_lr(np.cumsum(j), np.cumsum(m)) >= self.threshold)
        return int(possible[0]), int(crossed[0]) if crossed.size else int(possible[-1])

    def first_crossing(self, y: np.ndarray, k0: int = 0, n0: int = 0) -> int:
        """0-based index (offset by ``n0``) of the first unit where ``LR >= 1/alpha``, else -1."""
        y = np.asarray(y, dtype=np.int64)
        k = k0 + np.cumsum(y)
        n = n0 + np.arange(1, y.size + 1)
        hits = np.flatnonzero(self.log_lr(k, n) >= self.threshold)
        return n0 + int(hits[0]) if hits.size else -1


@dataclasses.dataclass(frozen=True)
class SearchWindow:
    """Bins ``first..last`` (positions in the matrix, keys ``first_key + position``) to search."""

    first_key: int
    last_key: int
    units_before: int
    treatment_before: int
    treatment: str
    test: Sprt


def lr_value(log_lr: float) -> float | str:
    """``exp(log_lr)``, or ``"inf"`` once it overflows a float."""
    with np.errstate(over="ignore"):
        value = float(np.exp(log_lr))
    return "inf" if math.isinf(value) else value


def sequential(
    variants: Sequence[str],
    new: np.ndarray,
    ratios: Sequence[float],
    first_key: int,
    crossing: Callable[[SearchWindow], int],
) -> dict[str, Any]:
    """SPRT over units in order of first exposure, from per-bin new counts plus a crossing search.

    ``crossing`` is asked only when some bin can cross; it returns the global 0-based index of the
    first unit (pair) at which ``LR >= 1/alpha`` inside the window, or -1.
    """
    if len(variants) != 2:
        return {"skipped": "needs exactly two variants", "stopped_index": -1, "log_lr": [], "last_lr": None}
    control, treatment = find_control(variants)
    p0 = float(shares(ratios, variants)[list(variants).index(treatment)])
    if not (p0 - SPRT_DELTA > 0 and p0 + SPRT_DELTA < 1):
        return {
            "skipped": f"p0={p0} leaves no room for delta",
            "stopped_index": -1,
            "log_lr": [],
            "last_lr": None,
        }
    test = Sprt.of(p0)
    new_t = new[:, list(variants).index(treatment)]
    new_n = new.sum(axis=1)
    log_lr = test.log_lr(np.cumsum(new_t), np.cumsum(new_n))
    stopped = -1
    candidates = test.candidate_bins(new_t, new_n)
    if candidates is not None:
        first, last = candidates
        window = SearchWindow(
            first_key + first,
            first_key + last,
            int(new_n[:first].sum()),
            int(new_t[:first].sum()),
            treatment,
            test,
        )
        stopped = crossing(window)
    return {
        "srm_detected": stopped >= 0,
        "stopped_index": stopped,
        "control": control,
        "treatment": treatment,
        "p0": p0,
        "log_lr": [float(v) for v in log_lr],
        "last_lr": lr_value(float(log_lr[-1])) if log_lr.size else None,
    }


def exact_output(
    impl: str,
    freq: str,
    bins: Bins,
    first_key: int,
    variants: Sequence[str],
    active: np.ndarray,
    new: np.ndarray,
    ratios: Sequence[float],
    crossing: Callable[[SearchWindow], int],
) -> dict[str, Any]:
    """The output dict of an exact implementation from its dense active and new matrices."""
    cumulative = np.cumsum(new, axis=0)
    units = cumulative[-1] if len(cumulative) else np.zeros(len(variants), dtype=np.int64)
    return {
        "impl": impl,
        "freq": freq,
        "semantics": dict(EXACT_SEMANTICS),
        "bins": bins.labels(first_key, len(active)),
        "variants": list(variants),
        "active": active.tolist(),
        "cumulative": cumulative.tolist(),
        "anomaly": traffic_drop(active.sum(axis=1)),
        "chi_square": chi_square(units, ratios, variants),
        "sprt": sequential(variants, new, ratios, first_key, crossing),
        "extra": {},
    }


def parse_ratios(text: str) -> list[float]:
    """``"1,1"`` -> ``[1.0, 1.0]`` (aligned with the sorted variant names)."""
    return [float(part) for part in text.split(",") if part.strip()]


def cli(run: Callable[[str, str, list[float]], dict[str, Any]], argv: Sequence[str] | None = None) -> None:
    """``--path P --freq h --ratios 1,1``: print ``run``'s output as JSON on stdout."""
    parser = argparse.ArgumentParser(description=run.__doc__)
    parser.add_argument("--path", required=True, help="Parquet exposure log")
    parser.add_argument("--freq", default="h", help="bin alias: [n]min, [n]h, [n]D, [n]W")
    parser.add_argument("--ratios", default="1,1", help="designed ratios, sorted-variant order")
    args = parser.parse_args(argv)
    json.dump(run(args.path, args.freq, parse_ratios(args.ratios)), sys.stdout)
    sys.stdout.write("\n")
