"""Records of the assignment checks: sample ratio mismatch and units seen under several variants.

The SRM tests are the chi-square on distinct units (:class:`LiveSRMResult`), the anytime-valid
Dirichlet-multinomial mixture (:class:`AnytimeSRMResult`), the two-arm mixture SPRT
(:class:`SequentialSRMResult`) and the chi-square per segment (:class:`SegmentSRMResult`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from xpyrment_sql.results.base import Result, frozen_array

Floats: TypeAlias = npt.NDArray[np.float64]
"""One number per bin (running p-values, Bayes factors, likelihood ratios)."""


def no_bins() -> Floats:
    """An empty read-only array: the running values of a test that saw no bin."""
    return frozen_array([], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class LiveSRMResult(Result):
    """Chi-square goodness of fit of distinct units per variant against the designed shares.

    ``srm_detected`` is ``p_value < alpha`` when every variant has at least ``min_units`` units
    (``enough_units``) and ``max_share_deviation``, the largest ``|observed share - expected share|``,
    exceeds ``min_deviation``.
    """

    srm_detected: bool
    p_value: float
    observed_counts: tuple[int, ...]
    expected_ratios: tuple[float, ...]
    alpha: float
    message: str
    variants: tuple[Any, ...] = ()
    expected_counts: tuple[float, ...] = ()
    chi_square: float = 0.0
    max_share_deviation: float = 0.0
    enough_units: bool = True
    min_units: int = 0
    min_deviation: float = 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class AnytimeSRMResult(Result):
    """The Dirichlet-multinomial mixture test (anytime-valid) evaluated at the end of every bin.

    ``running_p_values[t] = min(1, min_{s <= t} 1 / BF_s)``. The test stops at the first bin
    (``stopped_index``, 0-based, -1 if never; ``stopped_at`` is that bin's start) whose p-value is at
    most ``alpha`` while every variant has ``min_units`` units and some variant's share is off its
    expected share by more than ``min_deviation``. Once stopped, ``srm_detected`` stays True.

    ``method`` is ``"anytime"`` (the cumulative mixture) or ``"changepoint"``
    (:mod:`xpyrment_sql.stats.changepoint`: the evidence ``R_t`` also bets on a break at the start of
    a later day; ``running_log_bayes_factors`` holds ``log R_t``, ``concentration`` the cumulative
    term's ``c0``, and ``onset_at`` is the start of the day carrying the most evidence when it stopped).
    """

    srm_detected: bool
    message: str
    p_value: float = 1.0
    log_bayes_factor: float = 0.0
    running_p_values: Floats = dataclasses.field(default_factory=no_bins)
    running_log_bayes_factors: Floats = dataclasses.field(default_factory=no_bins)
    bins: pd.DatetimeIndex = dataclasses.field(default_factory=lambda: pd.DatetimeIndex([]))
    stopped_index: int = -1
    stopped_at: pd.Timestamp | None = None
    variants: tuple[Any, ...] = ()
    observed_counts: tuple[int, ...] = ()
    observed_shares: tuple[float, ...] = ()
    expected_shares: tuple[float, ...] = ()
    max_share_deviation: float = 0.0
    enough_units: bool = True
    alpha: float = 0.01
    concentration: float = 10_000.0
    min_units: int = 0
    min_deviation: float = 0.0
    method: str = "anytime"
    onset_at: pd.Timestamp | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class SequentialSRMResult(Result):
    """The two-arm mixture SPRT over units in order of first exposure.

    ``stopped_index`` is the 0-based position of the first unit at which ``LR >= 1/alpha`` (-1 if
    never); ``running_likelihood_ratios`` holds the LR at the end of each bin (``inf`` once it
    overflows a float; ``running_log_likelihood_ratios`` keeps the exact value).
    """

    srm_detected: bool
    message: str
    stopped_index: int = -1
    running_likelihood_ratios: Floats = dataclasses.field(default_factory=no_bins)
    running_log_likelihood_ratios: Floats = dataclasses.field(default_factory=no_bins)
    bins: pd.DatetimeIndex = dataclasses.field(default_factory=lambda: pd.DatetimeIndex([]))
    stopped_at: pd.Timestamp | None = None
    control: Any = None
    treatment: Any = None
    target_treatment_ratio: float = 0.5
    delta: float = 0.02
    alpha: float = 0.01


@dataclasses.dataclass(frozen=True, eq=False)
class SegmentSRMResult(Result):
    """Chi-square SRM per segment, Bonferroni-corrected, ranked by each segment's share of the chi-square.

    Attributes:
        srm_detected: Some tested segment has ``adjusted_p_value < alpha``. Never set by the segments
            of a post-assignment dimension (they are not tested).
        table: One row per segment large enough to test plus, if any, the pooled small segments
            (``segment`` = ``"(other)"``), tested segments first, by ``chi_square`` (largest first).
            Columns: ``segment``, the dimension columns, ``units`` (distinct units of the segment),
            ``chi_square``, ``p_value``, ``adjusted_p_value``, ``srm_detected``, ``tested``,
            ``contribution_share`` (``X_s^2 / sum of the tested segments' X^2``: in [0, 1], summing to
            1 over the tested segments; NaN for a segment not tested), and ``excess_<variant>``
            (observed minus expected units) for every variant.
        overall_chi_square: ``X^2`` on distinct units per variant (``overall_units``): the test of
            ``check_live_srm``, whatever the segments (a unit seen in two segments counts once here).
        overall_p_value: Its p-value, equal to ``check_live_srm``'s.
        tested_segments: Number of chi-square tests the Bonferroni correction divides ``alpha`` by.
        pooled_segments: Segments too small to test alone, tested together as ``"(other)"``.
        skipped_segments: Segments not tested at all (the pool itself was too small).
        overall_units: Distinct units per variant, aligned with ``variants``.
        post_assignment_dimensions: Dimension columns the variant decides (each of their segments
            holds one arm, e.g. a page only one arm can see): no segment is tested while one is given,
            as every segment combines its values; ``chi_square`` and ``p_value`` stay in the table to
            show the imbalance.
    """

    srm_detected: bool
    message: str
    alpha: float
    dimension_cols: tuple[str, ...]
    variants: tuple[Any, ...]
    expected_shares: tuple[float, ...]
    table: pd.DataFrame
    overall_chi_square: float
    overall_p_value: float
    tested_segments: int
    pooled_segments: tuple[str, ...] = ()
    skipped_segments: tuple[str, ...] = ()
    min_expected_units: float = 10.0
    overall_units: tuple[int, ...] = ()
    post_assignment_dimensions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class MultipleExposureResult(Result):
    """Units seen under more than one variant.

    Attributes:
        multiple_exposure_detected: ``share > max_share``.
        units: Distinct units in the log.
        multiple_units: Units seen under two or more variants.
        share: ``multiple_units / units`` (0 for an empty log).
        pairs: One row per pair of variants sharing units (``first_variant < second_variant``), with
            ``units`` the units seen under both, most affected pair first. A unit seen under three
            variants appears in each of its three pairs.
    """

    multiple_exposure_detected: bool
    message: str
    units: int
    multiple_units: int
    share: float
    max_share: float
    pairs: pd.DataFrame
