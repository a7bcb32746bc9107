"""Sample ratio mismatch (SRM) tests on distinct-unit counts.

* :func:`chi_square_srm`: Pearson's goodness of fit of the final counts against the designed shares,
  ``X^2 = sum_i (n_i - N p_i)^2 / (N p_i)`` with ``k - 1`` degrees of freedom.
* :func:`sprt_log_likelihood_ratio`: the seed's two-point mixture SPRT for two arms. With ``p0`` the
  designed treatment share, ``k`` treatment units among ``n``,

      LR_n = 0.5 * prod f(y | p0 + delta) / f(y | p0) + 0.5 * prod f(y | p0 - delta) / f(y | p0),

  rejecting balance once ``LR_n >= 1 / alpha`` (Wald, 1945). The log of each product is linear in
  ``(k, n - k)``, which is what lets the backend evaluate it with running counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import LiveSRMResult


def expected_shares(
    expected_ratios: Sequence[float] | Mapping[Any, float], variants: Sequence[Any]
) -> np.ndarray:
    """Designed share of each variant, aligned with ``variants`` (sorted names).

    ``expected_ratios`` is a list in the order of the sorted variant names, or a dict keyed by name.
    Ratios need not sum to one; they are normalised.

    Raises:
        ParameterError: on a length mismatch, a non-positive ratio, or a dict that names a variant
            not in the data or misses one that is. The message lists the variants seen.
    """
    seen = ", ".join(map(repr, variants))
    if isinstance(expected_ratios, Mapping):
        unknown = [k for k in expected_ratios if k not in set(variants)]
        missing = [v for v in variants if v not in expected_ratios]
        if unknown or missing:
            raise ParameterError(
                f"expected_ratios names {unknown or 'no unknown variants'} and misses "
                f"{missing or 'none'}; the variants in the data are: {seen}"
            )
        ratios = [expected_ratios[v] for v in variants]
    else:
        ratios = list(expected_ratios)
        if len(ratios) != len(variants):
            raise ParameterError(
                f"expected_ratios has {len(ratios)} value(s) but the data has {len(variants)} "
                f"variant(s): {seen} (ratios are matched to the sorted variant names)"
            )
    values = np.asarray(ratios, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ParameterError(
            f"expected_ratios must all be positive numbers; got {ratios} for variants {seen}"
        )
    return values / values.sum()


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` if it lies strictly between 0 and 1."""
    if not 0 < alpha < 1:
        raise ParameterError(f"{name}={alpha!r} must be between 0 and 1 (exclusive)")
    return float(alpha)


def chi_square_srm(
    observed: Sequence[int],
    expected_ratios: Sequence[float] | Mapping[Any, float],
    variants: Sequence[Any],
    alpha: float = 0.001,
) -> LiveSRMResult:
    """Chi-square SRM test of ``observed`` distinct units per variant against the designed ratios."""
    alpha = check_alpha(alpha)
    if len(variants) == 0:
        given = expected_ratios.values() if isinstance(expected_ratios, Mapping) else expected_ratios
        return LiveSRMResult(
            False,
            1.0,
            (),
            tuple(map(float, given)),
            alpha,
            "Cumulative traffic DataFrame is empty.",
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
    if total > 0:
        statistic, p_value = stats.chisquare(f_obs=counts, f_exp=expected)
    else:
        statistic, p_value = 0.0, 1.0
    detected = bool(p_value < alpha)
    summary = ", ".join(f"{v}={int(n)}" for v, n in zip(variants, counts, strict=True))
    message = (
        f"SRM detected: p-value = {p_value:.3g} < alpha = {alpha:g} (units {summary}; "
        f"expected shares {', '.join(f'{s:.4f}' for s in shares)})."
        if detected
        else f"No SRM detected. p-value = {p_value:.4f}"
    )
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
    return np.logaddexp(k * a_up + rest * b_up, k * a_dn + rest * b_dn) + np.log(0.5)


def find_control(variants: Sequence[Any]) -> tuple[Any, Any]:
    """``(control, treatment)`` of a two-arm test, found as the seed does.

    The first sorted name containing ``ctrl`` or ``control`` (any case) is control; without one, the
    first sorted name is.
    """
    control, treatment = variants[0], variants[1]
    for name in variants:
        lowered = str(name).lower()
        if "ctrl" in lowered or "control" in lowered:
            return name, next(v for v in variants if v != name)
    return control, treatment


def sprt_search_bins(
    new_treatment: np.ndarray,
    new_total: np.ndarray,
    target_treatment_ratio: float,
    delta: float,
    alpha: float,
) -> tuple[int, int] | None:
    """The bins that can hold the SPRT's first crossing, from per-bin first-exposure counts alone.

    Inside bin ``t`` the sequence moves from ``(n_s, k_s)`` (units and treatment units before the bin)
    by ``m`` units of which ``j`` are treatment, in an order the counts do not reveal. Because
    ``a_up > 0 > b_up`` and ``b_dn > 0 > a_dn``, no ordering can push either log-likelihood above

        up_max = (k_s + j) * a_up + (n_s - k_s) * b_up,
        dn_max = k_s * a_dn + (n_s - k_s + m - j) * b_dn,

    so ``log LR <= log(0.5) + logaddexp(up_max, dn_max)`` throughout the bin. The first crossing lies
    in the first bin where that bound reaches ``log(1/alpha)``, and no later than the first bin whose
    end-of-bin LR (exact, from the counts) does.

    Returns:
        ``(first, last)`` bin positions (inclusive) to search unit by unit, or ``None`` when no bin can
        cross, in which case the test has certainly not stopped and no query is needed.
    """
    a_up, b_up, a_dn, b_dn = sprt_coefficients(target_treatment_ratio, delta)
    j = np.asarray(new_treatment, dtype=float)
    m = np.asarray(new_total, dtype=float)
    k_start = np.cumsum(j) - j
    n_start = np.cumsum(m) - m
    up_max = (k_start + j) * a_up + (n_start - k_start) * b_up
    dn_max = k_start * a_dn + (n_start - k_start + m - j) * b_dn
    threshold = np.log(1.0 / alpha)
    possible = np.flatnonzero(np.logaddexp(up_max, dn_max) + np.log(0.5) >= threshold)
    if possible.size == 0:
        return None
    at_end = sprt_log_likelihood_ratio(np.cumsum(j), np.cumsum(m), target_treatment_ratio, delta)
    crossed = np.flatnonzero(at_end >= threshold)
    last = int(crossed[0]) if crossed.size else int(possible[-1])
    return int(possible[0]), last
