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
The weights are about ``(1 - w) / S`` each for the first ``S`` days and then decay as ``1 / s^2``:
a late start needs a little more evidence (``log(v_1 / v_s)`` nats), but no start ever leaves the
mixture. (Dropping the oldest of a sliding window of ``S`` starts, as a "last S days" mixture does,
would break the martingale property: a start is dropped whatever its value, and a new one enters
at 1, so under the designed split the sum drifts up after day ``S``.)

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

    def unstarted_weight(self, starts: int) -> float:
        """The weight of the days after the first ``starts``, whose terms are still 1:
        ``sum_{s > n} v_s = (1 - w) * S / (n + S)``."""
        return (1.0 - self.cumulative_weight) * self.spread_days / (starts + self.spread_days)

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
    """The position of the first bin of every day of ``bins`` (labels in the bins' own zone); with
    daily or coarser bins, every bin starts a day of its own."""
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

    Args:
        new_units: ``new[t, i]``: units of arm ``i`` first exposed in bin ``t``; leading axes
            (simulations) are allowed before the bins axis.
        shares: The designed share of every arm (sums to 1).
        starts: Positions of the bins that start a day (see :func:`day_starts`); the first must be 0.
        settings: ``w``, ``c0``, ``c1``, ``S``.

    Returns:
        ``log R_t`` and the onset estimate per bin (arrays with the leading axes of ``new_units``).
    """
    new = np.asarray(new_units, dtype=float)
    p0 = np.asarray(shares, dtype=float)
    first_bins = np.asarray(starts, dtype=np.int64)
    if first_bins.size == 0 or first_bins[0] != 0:
        raise ParameterError("starts must begin with 0, the experiment's first bin")
    cumulative = np.cumsum(new, axis=-2)
    bins = new.shape[-2]
    log_terms = [np.log(settings.cumulative_weight) if settings.cumulative_weight > 0 else -np.inf]
    terms = [log_terms[0] + anytime_log_bayes_factors(cumulative, p0, settings.cumulative_concentration)]
    weights = settings.start_weights(len(first_bins))
    position = np.arange(bins)
    for weight, first in zip(weights, first_bins, strict=True):
        before = cumulative[..., first - 1, :] if first > 0 else np.zeros_like(cumulative[..., 0, :])
        since = np.maximum(cumulative - before[..., None, :], 0.0)
        log_bf = anytime_log_bayes_factors(since, p0, settings.onset_concentration)
        terms.append(np.log(weight) + np.where(position >= first, log_bf, 0.0))
    stacked = np.stack(terms, axis=-1)
    onset_term = np.argmax(stacked, axis=-1)
    onset = np.where(onset_term == 0, 0, first_bins[np.maximum(onset_term - 1, 0)])
    unstarted = np.log(settings.unstarted_weight(len(first_bins)))
    log_evidence = np.logaddexp(np.logaddexp.reduce(stacked, axis=-1), unstarted)
    return ChangePointEvidence(log_evidence, onset.astype(np.int64))


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
