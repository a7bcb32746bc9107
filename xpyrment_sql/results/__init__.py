"""Typed, immutable result records that also read like the seed's dictionaries.

Every check returns a frozen dataclass. ``res.p_value`` and ``res["p_value"]`` both work, so code written
against the seed's dicts keeps running; ``res.to_dict()`` gives plain JSON-able values (numpy scalars and
arrays become Python numbers and lists, nested records become dicts, frames become lists of records).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from xpyrment_sql.results.metrics import GuardrailReport


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` into plain Python (dict, list, str, int, float, bool, None) for JSON.

    Non-finite floats become ``None`` because JSON has no NaN or infinity.
    """
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        frame = value.reset_index()
        return [to_jsonable(row) for row in frame.to_dict(orient="records")]
    if isinstance(value, pd.Index):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def frozen_array(values: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``values``: records hold arrays nobody can change behind their back."""
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


@dataclasses.dataclass(frozen=True)
class Result(Mapping[str, Any]):
    """Base of every result record: attribute access plus the read-only mapping protocol."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-able Python values."""
        return {name: to_jsonable(getattr(self, name)) for name in self._field_names()}


@dataclasses.dataclass(frozen=True)
class DispatchOutcome(Result):
    """Which alert handlers delivered an alert and which failed.

    Handlers are named by kind and host only (``"slack:hooks.slack.com"``, ``"callback:notify"``):
    webhook URLs are secrets and never appear in results, logs or errors.
    """

    alert_type: str
    succeeded: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every registered handler succeeded."""
        return not self.failed


@dataclasses.dataclass(frozen=True)
class TrafficAnomalyResult(Result):
    """Outcome of the traffic-drop test on the judged bin (the latest *complete* bin).

    The seed's keys keep their meaning for both methods: ``latest_volume`` is the judged bin's units,
    ``historical_mean`` what was expected of it and ``historical_std`` the standard deviation of the
    judged bin around that expectation. For the z-score test ``z_score = (latest_volume -
    historical_mean) / historical_std``; for the seasonal test it is the normal quantile of the judged
    bin's lower tail probability under the quasi-Poisson (negative-binomial) model, which equals that
    ratio at large counts and stays right at small ones (0 units against 20 expected is ``z = -4.8``
    there, not ``-3.2``). See :mod:`xpyrment_sql.stats.seasonal`.

    Attributes:
        method: ``"seasonal"`` (same bin in earlier cycles, the default) or ``"zscore"`` (the seed's
            test against the preceding ``window`` bins); what actually ran, so a seasonal request
            with less than one cycle of history reads ``"zscore"``.
        judged_bin: Start of the bin that was judged, ``None`` when no bin was complete.
        unfinished_bin: Start of the bin still in progress at the evaluation instant (shown, never
            judged), or ``None``.
        threshold: The z-score below ``-threshold`` that counts as a drop.
        cycle_bins: Bins per cycle the seasonal baseline used (24 for hourly bins within a day,
            168 for the hour of the week), 0 for the z-score test.
        cycles: Earlier cycles in the seasonal baseline (0 for the z-score test).
        dispersion: Quasi-Poisson dispersion ``phi`` (variance / mean) of the recent residuals.
    """

    anomaly_detected: bool
    latest_volume: float
    historical_mean: float
    historical_std: float
    z_score: float
    message: str
    method: str = "zscore"
    judged_bin: pd.Timestamp | None = None
    unfinished_bin: pd.Timestamp | None = None
    threshold: float = 3.0
    cycle_bins: int = 0
    cycles: int = 0
    dispersion: float = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class TrafficMatrix(Result):
    """Distinct units per bin and variant: the small matrix every traffic check is computed from.

    Attributes:
        bins: Start of each bin, every bin from the first observed to the last (or to ``until``).
        variants: Variant names, sorted.
        active: ``active[t, v]``: units of variant ``v`` seen in bin ``t``.
        new: ``new[t, v]``: units of variant ``v`` whose first exposure is in bin ``t``.
        freq: The bin alias the matrix was built with.
        variant_col: The column the variants come from (names the frames' column axis).
        first_key: Integer key of the first bin (see ``bins``); bin ``i`` has key ``first_key + i``.
        unfinished: True when the last bin is still in progress at the evaluation instant (it holds
            only part of its traffic: it is shown, and never judged as a drop).
        evaluated_at: The evaluation instant (aware UTC) when ``until`` was given; ``None`` means the
            latest exposure (which lies inside the last bin, so that bin is unfinished).
    """

    bins: pd.DatetimeIndex
    variants: tuple[Any, ...]
    active: np.ndarray
    new: np.ndarray
    freq: str
    variant_col: str = "variant"
    first_key: int = 0
    unfinished: bool = False
    evaluated_at: pd.Timestamp | None = None

    @property
    def complete_bins(self) -> int:
        """Number of leading bins that are complete (all of them but an unfinished last one)."""
        return len(self.bins) - int(self.unfinished)

    def binned(self, count: str = "active") -> pd.DataFrame:
        """Units per bin as a DataFrame (bins x variants); ``count`` is ``"active"`` or ``"new"``."""
        values = self.active if count == "active" else self.new
        columns = pd.Index(self.variants, name=self.variant_col)
        return pd.DataFrame(np.array(values), index=self.bins, columns=columns)

    def cumulative(self) -> pd.DataFrame:
        """Cumulative distinct units, ``C_v(t) = sum_{tau <= t} new_v(tau)``; last row = distinct units."""
        return self.binned("new").cumsum(axis=0)

    @property
    def units(self) -> np.ndarray:
        """Distinct units per variant over the whole log (the last cumulative row)."""
        return self.new.sum(axis=0)


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
    """

    srm_detected: bool
    message: str
    p_value: float = 1.0
    log_bayes_factor: float = 0.0
    running_p_values: np.ndarray = dataclasses.field(default_factory=lambda: frozen_array([]))
    running_log_bayes_factors: np.ndarray = dataclasses.field(default_factory=lambda: frozen_array([]))
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
class SequentialSRMResult(Result):
    """The two-arm mixture SPRT over units in order of first exposure.

    ``stopped_index`` is the 0-based position of the first unit at which ``LR >= 1/alpha`` (-1 if
    never); ``running_likelihood_ratios`` holds the LR at the end of each bin (``inf`` once it
    overflows a float; ``running_log_likelihood_ratios`` keeps the exact value).
    """

    srm_detected: bool
    message: str
    stopped_index: int = -1
    running_likelihood_ratios: np.ndarray = dataclasses.field(default_factory=lambda: frozen_array([]))
    running_log_likelihood_ratios: np.ndarray = dataclasses.field(default_factory=lambda: frozen_array([]))
    bins: pd.DatetimeIndex = dataclasses.field(default_factory=lambda: pd.DatetimeIndex([]))
    stopped_at: pd.Timestamp | None = None
    control: Any = None
    treatment: Any = None
    target_treatment_ratio: float = 0.5
    delta: float = 0.02
    alpha: float = 0.01


@dataclasses.dataclass(frozen=True, eq=False)
class TelemetryReport(Result):
    """Everything ``run_telemetry_checks`` found, read like the seed's dict.

    ``shutoff_triggered`` is sticky on the monitor: once an SRM fired it stays True.
    ``sequential_srm`` is the anytime-valid test's record, or the SPRT's with
    ``sequential_method="sprt"``; ``multiple_exposure`` is ``None`` when that check was switched off.
    """

    shutoff_triggered: bool
    alerts_triggered: tuple[str, ...]
    traffic_anomaly: TrafficAnomalyResult
    cumulative_srm: LiveSRMResult
    sequential_srm: AnytimeSRMResult | SequentialSRMResult
    traffic: TrafficMatrix
    dispatches: tuple[DispatchOutcome, ...] = ()
    multiple_exposure: MultipleExposureResult | None = None
    guardrails: GuardrailReport | None = None

    @property
    def healthy(self) -> bool:
        """True when no alert fired."""
        return not self.alerts_triggered
