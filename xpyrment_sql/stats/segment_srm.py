"""SRM per segment: where in the population the designed split breaks.

For segment ``s`` with ``N_s`` units, ``O_sv`` of them in variant ``v`` and designed shares ``p_v``:

* each segment large enough is tested with Pearson's chi-square, ``X_s^2 = sum_v d_sv^2 / (N_s p_v)``
  with ``d_sv = O_sv - N_s p_v``, on ``k - 1`` degrees of freedom, and its p-value is Bonferroni
  adjusted, ``min(1, m * p_s)`` over the ``m`` tests (Dunn, 1961);
* the overall deviation is the sum of the segments' deviations, ``D_v = sum_s d_sv`` (the expected
  counts add up), so the overall statistic ``X^2 = sum_v D_v^2 / (N p_v)`` splits exactly into

      X^2 = sum_s c_s,    c_s = sum_v d_sv D_v / (N p_v),

  segment ``s``'s contribution: positive when it deviates in the direction of the overall mismatch.
  Ranking by ``c_s`` puts the segment that loses treatment units at the top.

A segment is tested alone when every arm expects at least ``min_expected_units`` units
(``N_s * min_v p_v``, a Cochran-style rule for the chi-square approximation); smaller segments are
pooled and tested together, and skipped when even the pool is too small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import SegmentSRMResult
from xpyrment_sql.stats.srm import check_alpha, expected_shares

OTHER = "(other)"


def check_min_expected_units(min_expected_units: float) -> float:
    """Return ``min_expected_units`` if it is a number > 0."""
    valid = isinstance(min_expected_units, (int, float, np.number)) and not isinstance(
        min_expected_units, bool
    )
    if not (valid and min_expected_units > 0):
        raise ParameterError(f"min_expected_units={min_expected_units!r} must be a number > 0")
    return float(min_expected_units)


def segment_label(dimension_cols: Sequence[str], values: Sequence[Any]) -> str:
    """``"platform=android, app_version=5.2"``."""
    return ", ".join(f"{name}={value}" for name, value in zip(dimension_cols, values, strict=True))


def segment_srm(
    counts: np.ndarray,
    segments: Sequence[tuple[Any, ...]],
    dimension_cols: Sequence[str],
    variants: Sequence[Any],
    expected_ratios: Sequence[float] | Mapping[Any, float],
    alpha: float = 0.001,
    min_expected_units: float = 10.0,
) -> SegmentSRMResult:
    """Chi-square SRM per segment with a Bonferroni correction, ranked by contribution (module docstring).

    Args:
        counts: ``counts[s, v]``: distinct units of segment ``s`` in variant ``v``.
        segments: The dimension values of each row of ``counts``.
        dimension_cols: Names of the dimensions.
        variants: Variant names (sorted), one per column of ``counts``.
        expected_ratios: Designed ratios, a list aligned with ``variants`` or a dict keyed by name.
        alpha: Family-wise level across the segments tested.
        min_expected_units: A segment is tested alone when each arm expects at least this many units.
    """
    alpha = check_alpha(alpha)
    min_expected_units = check_min_expected_units(min_expected_units)
    if len(variants) == 0:
        return SegmentSRMResult(
            False,
            "No assignment data available.",
            alpha,
            tuple(dimension_cols),
            (),
            (),
            pd.DataFrame(),
            0.0,
            1.0,
            0,
        )
    shares = expected_shares(expected_ratios, variants)
    counts = np.asarray(counts, dtype=float).reshape(-1, len(variants))
    labels = [segment_label(dimension_cols, values) for values in segments]
    small = counts.sum(axis=1) * shares.min() < min_expected_units
    rows = [
        (label, tuple(values), count)
        for label, values, count, s in zip(labels, segments, counts, small, strict=True)
        if not s
    ]
    pooled = tuple(label for label, s in zip(labels, small, strict=True) if s)
    if pooled:
        rows.append((OTHER, (None,) * len(dimension_cols), counts[small].sum(axis=0)))
    matrix = np.array([count for _, _, count in rows]).reshape(-1, len(variants))
    expected = matrix.sum(axis=1, keepdims=True) * shares
    tested = expected.min(axis=1) >= min_expected_units
    statistic = np.divide((matrix - expected) ** 2, expected, out=np.zeros_like(matrix), where=expected > 0)
    chi_square = np.where(tested, statistic.sum(axis=1), np.nan)
    p_values = np.where(tested, stats.chi2.sf(chi_square, len(variants) - 1), np.nan)
    m = int(tested.sum())
    adjusted = np.minimum(1.0, p_values * m)
    detected = tested & (adjusted < alpha)

    deviation = matrix - expected
    total_deviation = deviation.sum(axis=0)
    total_expected = matrix.sum() * shares
    weights = np.divide(total_deviation, total_expected, out=np.zeros_like(shares), where=total_expected > 0)
    contribution = deviation @ weights
    overall = float(contribution.sum())
    overall_p = float(stats.chi2.sf(overall, len(variants) - 1)) if len(variants) > 1 else 1.0

    table = pd.DataFrame({"segment": [label for label, _, _ in rows]})
    for i, name in enumerate(dimension_cols):
        table[name] = [values[i] for _, values, _ in rows]
    table = table.assign(
        units=matrix.sum(axis=1).astype(np.int64),
        chi_square=chi_square,
        p_value=p_values,
        adjusted_p_value=adjusted,
        srm_detected=detected,
        tested=tested,
        contribution=contribution,
        contribution_share=contribution / overall if overall > 0 else np.nan,
    )
    for v, column in zip(variants, deviation.T, strict=True):
        table[f"excess_{v}"] = column
    table = table.sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    skipped = pooled if pooled and not tested[-1] else ()
    return SegmentSRMResult(
        srm_detected=bool(detected.any()),
        message=_message(table, detected, m, alpha, variants),
        alpha=alpha,
        dimension_cols=tuple(dimension_cols),
        variants=tuple(variants),
        expected_shares=tuple(float(p) for p in shares),
        table=table,
        overall_chi_square=overall,
        overall_p_value=overall_p,
        tested_segments=m,
        pooled_segments=pooled,
        skipped_segments=skipped,
        min_expected_units=min_expected_units,
    )


def _message(
    table: pd.DataFrame, detected: np.ndarray, tests: int, alpha: float, variants: Sequence[Any]
) -> str:
    top = table.iloc[0]
    excess = ", ".join(f"{v} {top[f'excess_{v}']:+,.0f}" for v in variants)
    head = (
        f"SRM in {int(detected.sum())} of {tests} segment(s) (Bonferroni: p < {alpha:g}/{tests})."
        if detected.any()
        else f"No segment shows an SRM ({tests} tested, Bonferroni: p < {alpha:g}/{max(tests, 1)})."
    )
    return f"{head} Largest share of the overall mismatch: {top['segment']} (units vs expected: {excess})."
