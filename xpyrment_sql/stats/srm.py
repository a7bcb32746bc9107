"""Sample ratio mismatch (SRM) tests on distinct-unit counts.

* :func:`chi_square_srm`: Pearson's goodness of fit of the final counts against the designed shares,
  ``X^2 = sum_i (n_i - N p_i)^2 / (N p_i)`` with ``k - 1`` degrees of freedom.
* :func:`sprt_log_likelihood_ratio`: the seed's two-point mixture SPRT for two arms. With ``p0`` the
  designed treatment share, ``k`` treatment units among ``n``,

      LR_n = 0.5 * prod f(y | p0 + delta) / f(y | p0) + 0.5 * prod f(y | p0 - delta) / f(y | p0),

  rejecting balance once ``LR_n >= 1 / alpha`` (Wald, 1945). The log of each product is linear in
  ``(k, n - k)``, which is what lets the backend evaluate it with running counts.
* :func:`anytime_srm`: the Dirichlet-multinomial mixture test for any number of arms (Lindon & Malek,
  2022), valid however often it is looked at. See :func:`anytime_log_bayes_factors`.

Both SRM verdicts can be gated: no verdict until every arm has ``min_units`` units, and an SRM counts
only when some arm's observed share is off its expected share by more than ``min_deviation``. On
billions of units a 0.01% deviation is "significant"; the gates keep such mismatches from alerting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from xpyrment_sql.errors import ParameterError, listed
from xpyrment_sql.results import AnytimeSRMResult, LiveSRMResult, frozen_array
from xpyrment_sql.stats.distributions import log_gamma, pearson_chi_square

DEFAULT_CONCENTRATION = 10_000.0
"""Total prior weight ``c`` of the anytime test's Dirichlet prior (see ``benchmarks/CALIBRATION.md``)."""


def expected_shares(
    expected_ratios: Sequence[float] | Mapping[Any, float], variants: Sequence[Any]
) -> np.ndarray:
    """Designed share of each variant, aligned with ``variants`` (sorted names).

    ``expected_ratios`` is a list in the order of the sorted variant names, or a dict keyed by name.
    Ratios need not sum to one; they are normalised.

    Raises:
        ParameterError: on a length mismatch, a non-positive ratio, or a dict that names a variant
            not in the data or misses one that is. The message lists the variants seen.

    Examples:
        >>> expected_shares([1, 1, 2], ["a", "b", "c"])
        array([0.25, 0.25, 0.5 ])
        >>> expected_shares({"treatment": 3, "control": 1}, ["control", "treatment"])
        array([0.25, 0.75])
    """
    seen = listed(variants)
    if isinstance(expected_ratios, Mapping):
        unknown = [k for k in expected_ratios if k not in set(variants)]
        missing = [v for v in variants if v not in expected_ratios]
        if unknown or missing:
            raise ParameterError(
                f"expected_ratios names {listed(unknown) or 'no unknown variants'} and misses "
                f"{listed(missing) or 'none'}; the {len(variants):,} variants in the data are: {seen}"
            )
        ratios = [expected_ratios[v] for v in variants]
    else:
        ratios = list(expected_ratios)
        if len(ratios) != len(variants):
            raise ParameterError(
                f"expected_ratios has {len(ratios)} value(s) but the data has {len(variants):,} "
                f"variant(s): {seen} (ratios are matched to the sorted variant names)"
            )
    values = np.asarray(ratios, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ParameterError(
            f"expected_ratios must all be positive numbers; got {ratios} for variants {seen}"
        )
    shares: np.ndarray = values / values.sum()
    return shares


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` if it lies strictly between 0 and 1."""
    if not 0 < alpha < 1:
        raise ParameterError(f"{name}={alpha!r} must be between 0 and 1 (exclusive)")
    return float(alpha)


def check_gates(min_units: int, min_deviation: float) -> tuple[int, float]:
    """Return the SRM gates if ``min_units`` is an integer ``>= 0`` and ``0 <= min_deviation < 1``."""
    if isinstance(min_units, bool) or not isinstance(min_units, (int, np.integer)) or min_units < 0:
        raise ParameterError(f"min_units={min_units!r} must be an integer >= 0 (units every arm needs)")
    if not (isinstance(min_deviation, (int, float, np.number)) and 0 <= min_deviation < 1):
        raise ParameterError(
            f"min_deviation={min_deviation!r} must be a share between 0 (inclusive) and 1 (exclusive)"
        )
    return int(min_units), float(min_deviation)


def share_deviation(counts: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """``max_i |n_i / N - p_i|`` along the last axis (0 where ``N = 0``)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    observed = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    deviation = np.abs(observed - shares).max(axis=-1, initial=0.0)
    return np.where(total[..., 0] > 0, deviation, 0.0)


def _gate_message(
    variants: Sequence[Any], counts: np.ndarray, min_units: int, deviation: float, min_deviation: float
) -> str | None:
    """Why an otherwise significant result is not an SRM, or ``None`` when the gates let it through."""
    short = [f"{v}={int(n)}" for v, n in zip(variants, counts, strict=True) if n < min_units]
    if short:
        return f"No verdict yet: {', '.join(short)} unit(s), fewer than min_units={min_units} per variant."
    if deviation <= min_deviation:
        return (
            f"No SRM counted: the largest share deviation {deviation:.4%} is not above "
            f"min_deviation={min_deviation:.4%}."
        )
    return None


def chi_square_srm(
    observed: npt.ArrayLike,
    expected_ratios: Sequence[float] | Mapping[Any, float],
    variants: Sequence[Any],
    alpha: float = 0.001,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> LiveSRMResult:
    """Chi-square SRM test of ``observed`` distinct units per variant against the designed ratios.

    ``srm_detected`` is ``p < alpha``, given every variant has ``min_units`` units and some share is
    off its expected share by more than ``min_deviation`` (see the module docstring).

    Examples:
        A 50/50 test with 300 more units in treatment than in control:

        >>> res = chi_square_srm([5_000, 5_300], [1, 1], ["control", "treatment"], alpha=0.01)
        >>> res.srm_detected, round(res.chi_square, 3), round(res["p_value"], 4)
        (True, 8.738, 0.0031)
        >>> res.expected_counts
        (5150.0, 5150.0)

        The same gap is no SRM when shares off by less than two percentage points do not count:

        >>> gated = chi_square_srm([5_000, 5_300], [1, 1], ["control", "treatment"], 0.01, min_deviation=0.02)
        >>> gated.srm_detected, gated.message
        (False, 'No SRM counted: the largest share deviation 1.4563% is not above min_deviation=2.0000%. ...')
    """
    alpha = check_alpha(alpha)
    min_units, min_deviation = check_gates(min_units, min_deviation)
    if len(variants) == 0:
        given = expected_ratios.values() if isinstance(expected_ratios, Mapping) else expected_ratios
        return LiveSRMResult(
            False,
            1.0,
            (),
            tuple(map(float, given)),
            alpha,
            "Cumulative traffic DataFrame is empty.",
            min_units=min_units,
            min_deviation=min_deviation,
        )
    shares = expected_shares(expected_ratios, variants)
    ratio_values = (
        tuple(float(expected_ratios[v]) for v in variants)
        if isinstance(expected_ratios, Mapping)
        else tuple(float(r) for r in expected_ratios)
    )
    counts = np.asarray(observed, dtype=float)
    total = counts.sum()
    expected = shares * total
    if total > 0 and counts.size > 1:
        statistic, p_value = pearson_chi_square(counts, expected)
    else:
        statistic, p_value = 0.0, 1.0
    deviation = float(share_deviation(counts, shares))
    gate = _gate_message(variants, counts, min_units, deviation, min_deviation)
    detected = bool(p_value < alpha) and gate is None
    summary = ", ".join(f"{v}={int(n)}" for v, n in zip(variants, counts, strict=True))
    if detected:
        message = (
            f"SRM detected: p-value = {p_value:.3g} < alpha = {alpha:g} (units {summary}; "
            f"expected shares {', '.join(f'{s:.4f}' for s in shares)})."
        )
    elif gate is not None and (p_value < alpha or np.any(counts < min_units)):
        message = f"{gate} p-value = {p_value:.4g}"
    else:
        message = f"No SRM detected. p-value = {p_value:.4f}"
    return LiveSRMResult(
        srm_detected=detected,
        p_value=float(p_value),
        observed_counts=tuple(int(n) for n in counts),
        expected_ratios=ratio_values,
        alpha=alpha,
        message=message,
        variants=tuple(variants),
        expected_counts=tuple(float(e) for e in expected),
        chi_square=float(statistic),
        max_share_deviation=deviation,
        enough_units=bool(np.all(counts >= min_units)),
        min_units=min_units,
        min_deviation=min_deviation,
    )


def check_concentration(concentration: float) -> float:
    """Return ``concentration`` if it is a positive finite number."""
    valid = isinstance(concentration, (int, float, np.number)) and not isinstance(concentration, bool)
    if not (valid and np.isfinite(concentration) and concentration > 0):
        raise ParameterError(
            f"concentration={concentration!r} must be a positive finite number (the total weight of "
            "the anytime test's Dirichlet prior, e.g. 10000)"
        )
    return float(concentration)


def anytime_log_bayes_factors(counts: np.ndarray, shares: np.ndarray, concentration: float) -> np.ndarray:
    """``log BF`` of the Dirichlet-multinomial mixture against the designed shares, per row of counts.

    With ``p0`` the expected shares, prior ``a_i = c * p0_i`` and ``n_i`` the units of arm ``i``
    (``N = sum n_i``), the ratio of the Dirichlet-multinomial marginal likelihood to the multinomial
    likelihood under ``p0`` (the multinomial coefficient cancels) is

        log BF = lgamma(c) - lgamma(c + N) + sum_i [lgamma(a_i + n_i) - lgamma(a_i)] - sum_i n_i log p0_i

    (Lindon & Malek, "Anytime-valid inference for multinomial count data", NeurIPS 2022). Computed in
    log space, so ``N`` in the billions is fine (absolute error about ``1e-16 * N * log N``).

    Args:
        counts: Cumulative units, arms along the last axis; any leading axes (bins, simulations).
        shares: Expected share of each arm (sums to 1).
        concentration: ``c``, the prior's total weight; larger ``c`` concentrates the prior on ``p0``.

    Returns:
        ``log BF`` with the last axis reduced.
    """
    n = np.asarray(counts, dtype=float)
    p0 = np.asarray(shares, dtype=float)
    a = concentration * p0
    total = n.sum(axis=-1)
    log_bf: np.ndarray = (
        log_gamma(concentration)
        - log_gamma(concentration + total)
        + (log_gamma(a + n) - log_gamma(a)).sum(axis=-1)
        - (n * np.log(p0)).sum(axis=-1)
    )
    return log_bf


def anytime_p_values(log_bayes_factors: np.ndarray) -> np.ndarray:
    """``p_t = min(1, min_{s <= t} 1 / BF_s)`` along the last axis: valid at any stopping time.

    Under the designed shares ``BF_t`` is a nonnegative martingale with mean 1, so by Ville's
    inequality ``P(sup_t BF_t >= 1/alpha) <= alpha``: looking after every bin costs nothing.

    Examples:
        The p-value never rises again, even when the evidence (``log BF``) falls back:

        >>> anytime_p_values(np.array([-1.0, 2.0, 5.0, 3.0])).round(5)
        array([1.     , 0.13534, 0.00674, 0.00674])
    """
    log_bf = np.asarray(log_bayes_factors, dtype=float)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_bf, axis=-1)))


def anytime_srm(
    cumulative_counts: np.ndarray,
    expected_ratios: Sequence[float] | Mapping[Any, float],
    variants: Sequence[Any],
    alpha: float = 0.01,
    concentration: float = DEFAULT_CONCENTRATION,
    bins: pd.DatetimeIndex | None = None,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> AnytimeSRMResult:
    """Anytime-valid SRM test on a bins x variants matrix of cumulative distinct units.

    Stops at the first bin ``t`` with ``p_t <= alpha`` (see :func:`anytime_p_values`) where every
    variant has at least ``min_units`` units and ``max_i |n_i / N - p0_i| > min_deviation``.

    Args:
        cumulative_counts: ``counts[t, i]``: units of variant ``i`` first seen up to the end of bin ``t``.
        expected_ratios: Designed ratios, a list aligned with ``variants`` or a dict keyed by name.
        variants: Variant names (sorted), one per column.
        alpha: Level; the test stops when the p-value reaches it.
        concentration: Total weight ``c`` of the Dirichlet prior.
        bins: Start of each bin, kept in the result.
        min_units: No verdict while some variant has fewer units.
        min_deviation: Smallest absolute share deviation that counts as an SRM.
    """
    alpha = check_alpha(alpha)
    concentration = check_concentration(concentration)
    min_units, min_deviation = check_gates(min_units, min_deviation)
    counts = np.asarray(cumulative_counts, dtype=float).reshape(-1, max(len(variants), 1))
    if np.any(counts < 0) or np.any(np.diff(counts, axis=0) < 0):
        raise ParameterError(
            "cumulative_counts must be non-negative and non-decreasing down each column (running totals)"
        )
    bins = pd.DatetimeIndex([]) if bins is None else bins
    if counts.shape[0] == 0 or len(variants) == 0:
        return AnytimeSRMResult(
            False,
            "No assignment data available.",
            alpha=alpha,
            concentration=concentration,
            min_units=min_units,
            min_deviation=min_deviation,
        )
    shares = expected_shares(expected_ratios, variants)
    log_bf = anytime_log_bayes_factors(counts, shares, concentration)
    p_values = anytime_p_values(log_bf)
    deviation = share_deviation(counts, shares)
    ready = np.all(counts >= min_units, axis=1) & (counts.sum(axis=1) > 0)
    stops = np.flatnonzero(ready & (p_values <= alpha) & (deviation > min_deviation))
    stopped = int(stops[0]) if stops.size else -1
    final = counts[-1]
    observed = final / final.sum() if final.sum() > 0 else np.zeros_like(final)
    shown = ", ".join(
        f"{v} {o:.4%} (exp. {p:.4%})" for v, o, p in zip(variants, observed, shares, strict=True)
    )
    gate = _gate_message(variants, final, min_units, float(deviation[-1]), min_deviation)
    if stopped >= 0:
        message = (
            f"SRM detected at bin {stopped} ({bins[stopped] if len(bins) else stopped}): anytime-valid "
            f"p-value {p_values[stopped]:.3g} <= alpha = {alpha:g}. Now: {shown}."
        )
    elif gate is not None and (p_values[-1] <= alpha or not ready[-1]):
        message = f"{gate} Anytime-valid p-value = {p_values[-1]:.4g}."
    else:
        message = f"No SRM detected. Anytime-valid p-value = {p_values[-1]:.4f}."
    return AnytimeSRMResult(
        srm_detected=stopped >= 0,
        message=message,
        p_value=float(p_values[-1]),
        log_bayes_factor=float(log_bf[-1]),
        running_p_values=frozen_array(p_values),
        running_log_bayes_factors=frozen_array(log_bf),
        bins=bins,
        stopped_index=stopped,
        stopped_at=pd.Timestamp(bins[stopped]) if stopped >= 0 and len(bins) else None,
        variants=tuple(variants),
        observed_counts=tuple(int(n) for n in final),
        observed_shares=tuple(float(o) for o in observed),
        expected_shares=tuple(float(p) for p in shares),
        max_share_deviation=float(deviation[-1]),
        enough_units=bool(ready[-1]),
        alpha=alpha,
        concentration=concentration,
        min_units=min_units,
        min_deviation=min_deviation,
    )


def check_sprt_parameters(target_treatment_ratio: float, delta: float, alpha: float) -> None:
    """Both alternatives ``p0 - delta`` and ``p0 + delta`` must be proper probabilities."""
    check_alpha(alpha)
    if not delta > 0:
        raise ParameterError(f"delta={delta!r} must be > 0")
    if not (target_treatment_ratio - delta > 0 and target_treatment_ratio + delta < 1):
        raise ParameterError(
            f"target_treatment_ratio={target_treatment_ratio!r} and delta={delta!r} must satisfy "
            "0 < target_treatment_ratio - delta and target_treatment_ratio + delta < 1"
        )


def sprt_coefficients(target_treatment_ratio: float, delta: float) -> tuple[float, float, float, float]:
    """Per-unit log-likelihood increments ``(a_up, b_up, a_dn, b_dn)`` of the two alternatives.

    A treatment unit adds ``a = log(p1 / p0)`` and a control unit ``b = log((1 - p1) / (1 - p0))``,
    with ``p1 = p0 + delta`` (up) or ``p0 - delta`` (down).
    """
    p0 = target_treatment_ratio
    up, down = p0 + delta, p0 - delta
    return (
        float(np.log(up / p0)),
        float(np.log((1 - up) / (1 - p0))),
        float(np.log(down / p0)),
        float(np.log((1 - down) / (1 - p0))),
    )


def sprt_log_likelihood_ratio(
    treatment_units: np.ndarray,
    total_units: np.ndarray,
    target_treatment_ratio: float,
    delta: float,
) -> np.ndarray:
    """``log LR_n`` of the mixture SPRT after ``total_units`` units, ``treatment_units`` of them treated."""
    a_up, b_up, a_dn, b_dn = sprt_coefficients(target_treatment_ratio, delta)
    k = np.asarray(treatment_units, dtype=float)
    rest = np.asarray(total_units, dtype=float) - k
    log_lr: np.ndarray = np.logaddexp(k * a_up + rest * b_up, k * a_dn + rest * b_dn) + np.log(0.5)
    return log_lr


def find_control(variants: Sequence[Any]) -> tuple[Any, Any]:
    """``(control, treatment)`` of a two-arm test, found as the seed does.

    The first sorted name containing ``ctrl`` or ``control`` (any case) is control; without one, the
    first sorted name is.

    Examples:
        >>> find_control(["B", "ctrl"])
        ('ctrl', 'B')
        >>> find_control(["A", "B"])
        ('A', 'B')
    """
    control, treatment = variants[0], variants[1]
    for name in variants:
        lowered = str(name).lower()
        if "ctrl" in lowered or "control" in lowered:
            return name, next(v for v in variants if v != name)
    return control, treatment
