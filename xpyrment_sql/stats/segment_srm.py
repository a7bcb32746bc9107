"""SRM per segment: where in the population the designed split breaks.

For segment ``s`` with ``N_s`` units, ``O_sv`` of them in variant ``v`` and designed shares ``p_v``:

* each segment large enough is tested with Pearson's chi-square, ``X_s^2 = sum_v d_sv^2 / (N_s p_v)``
  with ``d_sv = O_sv - N_s p_v`` (the ``excess_<v>`` columns), on ``k - 1`` degrees of freedom, and its
  p-value is Bonferroni adjusted, ``min(1, m * p_s)`` over the ``m`` tests (Dunn, 1961);
* segment ``s``'s share of the mismatch is its share of the tested segments' chi-square,

      share_s = X_s^2 / sum_{t tested} X_t^2,

  which is non-negative and sums to 1 over the tested segments. Under no SRM each ``X_s^2`` has mean
  ``k - 1`` whatever the segment's size, so the shares are about ``1/m`` each; a segment holding most
  of the sum is where the split breaks (large segments reach large ``X_s^2`` with smaller relative
  deviations, which is the evidence the test weighs);
* the overall test is the chi-square on distinct units per variant, ``O_v``, the test of
  ``check_live_srm``. A unit seen in several segments counts once in each segment but once overall,
  so the segments' counts need not add up to ``O_v``.

A segment is tested alone when every arm expects at least ``min_expected_units`` units
(``N_s * min_v p_v``, a Cochran-style rule for the chi-square approximation); smaller segments are
pooled and tested together, and skipped when even the pool is too small.

A segment column the variant itself decides (a page only one arm can see) gives segments that each
hold one arm: a per-segment SRM test does not apply to it, and every such segment would be flagged.
A dimension is taken as decided by the variant (post-assignment) when, among its values large enough
to test, every one has a single arm holding at least ``SINGLE_ARM_SHARE`` of its units, and not the
same arm in all of them. The second condition keeps a real failure that drops one arm from every
segment (the overall test sees it too) reported as an SRM, and a dimension with one large value (the
whole population) is never post-assignment. A segment that loses an arm while other segments keep
both arms (a crash on one platform) is an SRM in that segment, not a post-assignment dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import SegmentSRMResult
from xpyrment_sql.stats.distributions import chi2_sf, pearson_chi_square
from xpyrment_sql.stats.srm import check_alpha, expected_shares

OTHER = "(other)"
SINGLE_ARM_SHARE = 0.99
"""A segment holds one arm when that arm has at least this share of the segment's units."""


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


def decided_by_variant(counts: np.ndarray, shares: np.ndarray, min_expected_units: float) -> bool:
    """True when the segments of one dimension each hold one arm (module docstring).

    Args:
        counts: ``counts[s, v]``: units of value ``s`` of the dimension in variant ``v``.
        shares: Designed shares ``p_v``.
        min_expected_units: Values with ``N_s * min_v p_v`` below this are not judged.
    """
    counts = np.asarray(counts, dtype=float).reshape(-1, len(shares))
    totals = counts.sum(axis=1)
    large = counts[totals * shares.min() >= min_expected_units]
    if len(large) == 0:
        return False
    top_share = large.max(axis=1) / large.sum(axis=1)
    dominant = set(large.argmax(axis=1).tolist())
    return bool(np.all(top_share >= SINGLE_ARM_SHARE) and len(dominant) >= 2)


def segment_srm(
    counts: np.ndarray,
    segments: Sequence[tuple[Any, ...]],
    dimension_cols: Sequence[str],
    variants: Sequence[Any],
    expected_ratios: Sequence[float] | Mapping[Any, float],
    alpha: float = 0.001,
    min_expected_units: float = 10.0,
    overall_units: Sequence[float] | None = None,
    dimension_counts: Mapping[str, np.ndarray] | None = None,
) -> SegmentSRMResult:
    """Chi-square SRM per segment with a Bonferroni correction, ranked by chi-square (module docstring).

    Args:
        counts: ``counts[s, v]``: distinct units of segment ``s`` in variant ``v``.
        segments: The dimension values of each row of ``counts``.
        dimension_cols: Names of the dimensions.
        variants: Variant names (sorted), one per column of ``counts``.
        expected_ratios: Designed ratios, a list aligned with ``variants`` or a dict keyed by name.
        alpha: Family-wise level across the segments tested.
        min_expected_units: A segment is tested alone when each arm expects at least this many units.
        overall_units: Distinct units per variant over all segments; ``None`` when every unit is in
            one segment only, so that the overall counts are the column sums of ``counts``.
        dimension_counts: Per dimension, ``[values, variants]`` units of each of its values (rows in
            any order); ``None`` sums ``counts`` over the other dimensions, which is exact with one
            dimension or when every unit is in one segment only.
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
    overall = counts.sum(axis=0) if overall_units is None else np.asarray(overall_units, dtype=float)
    if dimension_counts is None:
        dimension_counts = _summed_per_dimension(counts, segments, dimension_cols)
    post_assignment = tuple(
        name
        for name in dimension_cols
        if decided_by_variant(dimension_counts[name], shares, min_expected_units)
    )

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
    testable = expected.min(axis=1) >= min_expected_units
    tested = testable & (not post_assignment)
    deviation = matrix - expected
    statistic = np.divide(deviation**2, expected, out=np.zeros_like(matrix), where=expected > 0)
    chi_square = np.where(testable, statistic.sum(axis=1), np.nan)
    p_values = np.where(testable, chi2_sf(chi_square, len(variants) - 1), np.nan)
    m = int(tested.sum())
    adjusted = np.where(tested, np.minimum(1.0, p_values * m), np.nan)
    detected = tested & (adjusted < alpha)
    tested_sum = float(np.sum(chi_square[tested]))
    contribution_share = np.where(tested & (tested_sum > 0), chi_square / (tested_sum or 1.0), np.nan)

    overall_chi_square, overall_p = _overall_test(overall, shares)
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
        contribution_share=contribution_share,
    )
    for v, column in zip(variants, deviation.T, strict=True):
        table[f"excess_{v}"] = column
    order = np.lexsort((-np.nan_to_num(chi_square, nan=-1.0), ~tested))
    table = table.iloc[order].reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    skipped = pooled if pooled and not testable[-1] else ()
    return SegmentSRMResult(
        srm_detected=bool(detected.any()),
        message=_message(table, m, alpha, variants, post_assignment, dimension_cols, overall_p),
        alpha=alpha,
        dimension_cols=tuple(dimension_cols),
        variants=tuple(variants),
        expected_shares=tuple(float(p) for p in shares),
        table=table,
        overall_chi_square=overall_chi_square,
        overall_p_value=overall_p,
        tested_segments=m,
        pooled_segments=pooled,
        skipped_segments=skipped,
        min_expected_units=min_expected_units,
        overall_units=tuple(int(n) for n in overall),
        post_assignment_dimensions=post_assignment,
    )


def _summed_per_dimension(
    counts: np.ndarray, segments: Sequence[tuple[Any, ...]], dimension_cols: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per dimension, the segments' counts summed per value of that dimension."""
    out = {}
    for i, name in enumerate(dimension_cols):
        keys = pd.Series([str(values[i]) for values in segments])
        out[name] = pd.DataFrame(counts).groupby(keys.to_numpy()).sum().to_numpy()
    return out


def _overall_test(overall: np.ndarray, shares: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square on distinct units per variant, as ``check_live_srm`` computes it."""
    total = overall.sum()
    if total <= 0 or len(overall) < 2:
        return 0.0, 1.0
    return pearson_chi_square(overall, total * shares)


def _message(
    table: pd.DataFrame,
    tests: int,
    alpha: float,
    variants: Sequence[Any],
    post_assignment: Sequence[str],
    dimension_cols: Sequence[str],
    overall_p: float,
) -> str:
    overall = f"Overall (distinct units per variant): p = {overall_p:.4g}."
    if post_assignment:
        names = ", ".join(repr(name) for name in post_assignment)
        column = "column" if len(post_assignment) == 1 else "columns"
        verb = "is" if len(post_assignment) == 1 else "are"
        rest = [name for name in dimension_cols if name not in post_assignment]
        hint = f" Segment by {', '.join(map(repr, rest))} without it." if rest else ""
        return (
            f"Segment {column} {names} {verb} decided by the variant (post-assignment): its segments "
            f"each hold one arm, so a per-segment SRM test does not apply.{hint} {overall}"
        )
    detected = int(table["srm_detected"].sum())
    head = (
        f"SRM in {detected} of {tests} segment(s) (Bonferroni: p < {alpha:g}/{tests})."
        if detected
        else f"No segment shows an SRM ({tests} tested, Bonferroni: p < {alpha:g}/{max(tests, 1)})."
    )
    top = table.iloc[0]
    if not top["tested"]:
        return f"{head} {overall}"
    excess = ", ".join(f"{v} {top[f'excess_{v}']:+,.0f}" for v in variants)
    return (
        f"{head} Largest share of the segments' chi-square: {top['segment']} "
        f"({top['contribution_share']:.0%}; units vs expected: {excess}). {overall}"
    )
