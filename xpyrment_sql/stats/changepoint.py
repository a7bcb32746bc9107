"""A sample ratio mismatch that starts late, caught within hours: the change-point mixture.

The anytime-valid test (:func:`xpyrment_sql.stats.srm.anytime_srm`) weighs every unit since the
experiment's start, so a break on day 20 is diluted by twenty healthy days. The change-point mixture
also bets on the split breaking at the start of a later day. With ``BF_c(s:t)`` the
Dirichlet-multinomial Bayes factor (:func:`~xpyrment_sql.stats.srm.anytime_log_bayes_factors`, prior
``Dirichlet(c * p0)``) on the units first exposed from the start of day ``s`` up to the end of bin
``t`` (``BF = 1`` before ``s``), the evidence at ``t`` is

    R_t = w * BF_c0(1:t) + sum_{s >= 1} v_s * BF_c1(s:t),
    v_s = (1 - w) * S / ((s + S - 1) * (s + S)),

and the test alarms when ``R_t >= 1 / alpha``. Under the designed split every ``BF_c(s:t)`` is a
nonnegative martingale with mean 1 (it stays 1 until ``s``, then bets only on units that arrive
later, which are independent of the earlier ones), and the weights are fixed and sum to 1
(``sum_s v_s = 1 - w``: the sum telescopes), so ``R`` is a test martingale and Ville's inequality
gives ``P(sup_t R_t >= 1/alpha) <= alpha`` for any number of looks at any times, over any horizon.
Days that have not started yet are in ``R_t`` with ``BF = 1``, their total weight in closed form
(``sum_{s > n} v_s = (1 - w) * S / (n + S)`` once ``n`` days have begun), so ``R_0 = 1``.

Why not ``(1 - w) / S * sum over the last S = 60 daily starts``, as first proposed: a sliding
window is no martingale. At the start of a new day the oldest term leaves and a new one enters at 1,
a jump of ``(1 - BF_c1(s_old:t)) / S`` that is known before it happens and, under the designed split,
is mostly upward (an old term has usually decayed far below 1). Each ``R_t`` still has mean 1, but
``R`` is not a supermartingale, so Ville's inequality does not bound its supremum: the chance of
ever crossing ``1/alpha`` grows with the horizon (the guarantee becomes one on the average run
length, as for the e-detectors of Shin et al.). Fixed weights keep every start for ever:
``v_s`` is about ``(1 - w) / S`` for the first days (``v_1 = (1 - w) / (S + 1)``, ``v_S`` a quarter
of it) and then decays as ``1 / s^2``, so a start ``s`` days in needs ``log(v_1 / v_s)`` more nats of
evidence (1.4 at day 60, 2.7 at day 180) and the bound holds however long the experiment runs.

The day of the break is estimated as the start carrying the most evidence at detection,
``argmax_s v_s * BF_c1(s:t)`` (with the experiment's start standing for the cumulative term).

References: Shin, Ramdas & Rinaldo, "E-detectors: a nonparametric framework for sequential change
detection" (2024); Lindon & Malek, "Anytime-valid inference for multinomial count data" (NeurIPS
2022).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import AnytimeSRMResult, frozen_array
from xpyrment_sql.stats.srm import (
    anytime_log_bayes_factors,
    anytime_p_values,
    check_alpha,
    check_concentration,
    check_gates,
    expected_shares,
    share_deviation,
)

METHOD = "changepoint"
"""The method's name in ``sequential_method`` and in its results."""

CUMULATIVE_WEIGHT = 0.75
"""``w``: the weight of the cumulative Bayes factor (a mismatch from the start)."""

CUMULATIVE_CONCENTRATION = 10_000.0
"""``c0``: the cumulative term's prior concentration (the anytime test's default)."""

ONSET_CONCENTRATION = 1_000.0
"""``c1``: the later starts' prior concentration (broader: a break is usually a few percent)."""

SPREAD_DAYS = 60
"""``S``: starts within the first ``S`` days share the onset weight about evenly."""


@dataclasses.dataclass(frozen=True)
class ChangePointSettings:
    """The mixture's tuning: ``w``, ``c0``, ``c1`` and ``S`` (see the module docstring)."""

    cumulative_weight: float = CUMULATIVE_WEIGHT
    cumulative_concentration: float = CUMULATIVE_CONCENTRATION
    onset_concentration: float = ONSET_CONCENTRATION
    spread_days: int = SPREAD_DAYS

    def __post_init__(self) -> None:
        if not 0.0 <= self.cumulative_weight < 1.0:
            weight = self.cumulative_weight
            raise ParameterError(f"cumulative_weight={weight!r} must be in [0, 1): the cumulative share")
        check_concentration(self.cumulative_concentration)
        check_concentration(self.onset_concentration)
        if (
            isinstance(self.spread_days, bool)
            or not isinstance(self.spread_days, int)
            or self.spread_days < 1
        ):
            raise ParameterError(f"spread_days={self.spread_days!r} must be a positive integer")

    def unstarted_weight(self, starts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The weight of the days after the first ``starts`` (per element), whose terms are still 1:
        ``sum_{s > n} v_s = (1 - w) * S / (n + S)``."""
        begun = np.asarray(starts, dtype=float)
        weight: npt.NDArray[np.float64] = (
            (1.0 - self.cumulative_weight) * self.spread_days / (begun + self.spread_days)
        )
        return weight

    def start_weights(self, starts: int) -> npt.NDArray[np.float64]:
        """``v_s`` for starts ``s = 1 .. starts`` (day 1 is the experiment's first day)."""
        s = np.arange(1, starts + 1, dtype=float)
        spread = float(self.spread_days)
        return (1.0 - self.cumulative_weight) * spread / ((s + spread - 1.0) * (s + spread))


@dataclasses.dataclass(frozen=True)
class ChangePointEvidence:
    """The mixture along the bins.

    Attributes:
        log_evidence: ``log R_t`` at the end of every bin.
        onset_index: Per bin, the bin that starts the day carrying the most evidence (0: the
            experiment's start, i.e. the cumulative term).
    """

    log_evidence: npt.NDArray[np.float64]
    onset_index: npt.NDArray[np.int64]


def day_starts(bins: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """The position of the first bin of every day of ``bins``: the possible onsets of a mismatch.

    Days follow the labels' zone (:meth:`xpyrment_sql.bins.BinSpec.labels`: naive UTC without a
    zone, else local time), so with ``tz="America/New_York"`` a day starts at the first bin that
    begins at or after local midnight, on daylight-saving days too. Bins finer than a day roll up to
    the day they start in; with daily or coarser bins every bin starts a day of its own.
    """
    if len(bins) == 0:
        return np.zeros(0, dtype=np.int64)
    days = bins.normalize()
    changed = np.ones(len(bins), dtype=bool)
    changed[1:] = days[1:] != days[:-1]
    return np.flatnonzero(changed).astype(np.int64)


def changepoint_evidence(
    new_units: npt.ArrayLike,
    shares: npt.ArrayLike,
    starts: npt.ArrayLike,
    settings: ChangePointSettings = ChangePointSettings(),
) -> ChangePointEvidence:
    """``log R_t`` for every bin ``t`` of a bins x arms matrix of newly exposed units.

    The terms are accumulated start by start in log space (``logaddexp``), so memory stays that of
    the matrix whatever the number of days; the days not started by bin ``t`` (``n_t`` starts have
    begun) add their weight in closed form, ``sum_{s > n_t} v_s = (1 - w) * S / (n_t + S)``.

    Args:
        new_units: ``new[t, i]``: units of arm ``i`` first exposed in bin ``t``; leading axes
            (simulations) are allowed before the bins axis.
        shares: The designed share of every arm (sums to 1).
        starts: Positions of the bins that start a day (see :func:`day_starts`): strictly increasing,
            the first 0, all within the bins.
        settings: ``w``, ``c0``, ``c1``, ``S``.

    Returns:
        ``log R_t`` and the onset estimate per bin (arrays with the leading axes of ``new_units``).

    Raises:
        ParameterError: when ``starts`` is not as described.
    """
    new = np.asarray(new_units, dtype=float)
    p0 = np.asarray(shares, dtype=float)
    first_bins = np.asarray(starts, dtype=np.int64)
    bins = new.shape[-2]
    if (
        first_bins.ndim != 1
        or first_bins.size == 0
        or first_bins[0] != 0
        or np.any(np.diff(first_bins) <= 0)
        or first_bins[-1] >= max(bins, 1)
    ):
        raise ParameterError(
            f"starts={first_bins.tolist()!r} must be strictly increasing bin positions beginning with 0 "
            f"(the experiment's first bin) and below the number of bins ({bins})"
        )
    cumulative = np.cumsum(new, axis=-2)
    with np.errstate(divide="ignore"):
        log_w = np.log(settings.cumulative_weight)
    best = log_w + anytime_log_bayes_factors(cumulative, p0, settings.cumulative_concentration)
    started = best.copy()
    onset = np.zeros(best.shape, dtype=np.int64)
    for weight, first in zip(settings.start_weights(len(first_bins)), first_bins, strict=True):
        before = cumulative[..., first - 1 : first, :] if first > 0 else 0.0
        since = cumulative[..., first:, :] - before
        term = np.log(weight) + anytime_log_bayes_factors(since, p0, settings.onset_concentration)
        started[..., first:] = np.logaddexp(started[..., first:], term)
        stronger = term > best[..., first:]
        best[..., first:] = np.where(stronger, term, best[..., first:])
        onset[..., first:] = np.where(stronger, first, onset[..., first:])
    begun = np.searchsorted(first_bins, np.arange(bins), side="right")
    return ChangePointEvidence(np.logaddexp(started, np.log(settings.unstarted_weight(begun))), onset)


def changepoint_srm(
    new_units: npt.ArrayLike,
    expected_ratios: Sequence[float] | Mapping[Any, float],
    variants: Sequence[Any],
    bins: pd.DatetimeIndex,
    alpha: float = 0.01,
    min_units: int = 0,
    min_deviation: float = 0.0,
    settings: ChangePointSettings = ChangePointSettings(),
) -> AnytimeSRMResult:
    """The change-point mixture on a bins x variants matrix of newly exposed units.

    Stops at the first bin ``t`` with ``R_t >= 1/alpha`` (the running p-value
    ``min(1, min_{u <= t} 1/R_u)`` at most ``alpha``) where every variant has ``min_units`` units
    and some variant's cumulative share is off its expected share by more than ``min_deviation``;
    ``onset_at`` is then the start of the day carrying the most evidence. The record is the anytime
    test's, with ``method="changepoint"`` and ``running_log_bayes_factors`` holding ``log R_t``.
    """
    alpha = check_alpha(alpha)
    min_units, min_deviation = check_gates(min_units, min_deviation)
    new = np.asarray(new_units, dtype=float).reshape(-1, max(len(variants), 1))
    if np.any(new < 0):
        raise ParameterError("new_units must be non-negative counts of newly exposed units")
    if new.shape[0] == 0 or len(variants) == 0:
        return AnytimeSRMResult(False, "No assignment data available.", alpha=alpha, method=METHOD)
    shares = expected_shares(expected_ratios, variants)
    evidence = changepoint_evidence(new, shares, day_starts(bins), settings)
    log_r = evidence.log_evidence
    p_values = anytime_p_values(log_r)
    counts = np.cumsum(new, axis=0)
    deviation = share_deviation(counts, shares)
    ready = np.all(counts >= min_units, axis=1) & (counts.sum(axis=1) > 0)
    stops = np.flatnonzero(ready & (p_values <= alpha) & (deviation > min_deviation))
    stopped = int(stops[0]) if stops.size else -1
    onset = int(evidence.onset_index[stopped]) if stopped >= 0 else -1
    final = counts[-1]
    observed = final / final.sum() if final.sum() > 0 else np.zeros_like(final)
    if stopped >= 0:
        message = (
            f"SRM detected at bin {bins[stopped]} by the change-point mixture (p-value "
            f"{p_values[stopped]:.3g} <= alpha = {alpha:g}); the mismatch most likely started on "
            f"{bins[onset]:%Y-%m-%d}."
        )
    else:
        message = f"No SRM detected. Change-point mixture p-value = {p_values[-1]:.4f}."
    return AnytimeSRMResult(
        srm_detected=stopped >= 0,
        message=message,
        p_value=float(p_values[-1]),
        log_bayes_factor=float(log_r[-1]),
        running_p_values=frozen_array(p_values),
        running_log_bayes_factors=frozen_array(log_r),
        bins=bins,
        stopped_index=stopped,
        stopped_at=pd.Timestamp(bins[stopped]) if stopped >= 0 else None,
        variants=tuple(variants),
        observed_counts=tuple(int(n) for n in final),
        observed_shares=tuple(float(o) for o in observed),
        expected_shares=tuple(float(p) for p in shares),
        max_share_deviation=float(deviation[-1]),
        enough_units=bool(ready[-1]),
        alpha=alpha,
        concentration=settings.cumulative_concentration,
        min_units=min_units,
        min_deviation=min_deviation,
        method=METHOD,
        onset_at=pd.Timestamp(bins[onset]) if onset >= 0 else None,
    )
