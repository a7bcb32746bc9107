"""Typed, immutable result records that also read like the seed's dictionaries.

Every check returns a frozen dataclass. ``res.p_value`` and ``res["p_value"]`` both work, so code written
against the seed's dicts keeps running; ``res.to_dict()`` gives plain JSON-able values (numpy scalars and
arrays become Python numbers and lists, nested records become dicts, frames become lists of records).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd


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
    """Outcome of the traffic-drop test on the latest bin."""

    anomaly_detected: bool
    latest_volume: float
    historical_mean: float
    historical_std: float
    z_score: float
    message: str


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
    """

    bins: pd.DatetimeIndex
    variants: tuple[Any, ...]
    active: np.ndarray
    new: np.ndarray
    freq: str
    variant_col: str = "variant"
    first_key: int = 0

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

    ``srm_detected`` is ``p_value < alpha``.
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
    """

    shutoff_triggered: bool
    alerts_triggered: tuple[str, ...]
    traffic_anomaly: TrafficAnomalyResult
    cumulative_srm: LiveSRMResult
    sequential_srm: SequentialSRMResult
    traffic: TrafficMatrix
    dispatches: tuple[DispatchOutcome, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when no alert fired."""
        return not self.alerts_triggered
