"""The two records a run is configured by, validated once at the edge and passed down whole.

* :class:`Design` is the experiment's: the designed split (``expected_ratios``) and, where it matters,
  the control arm. It says what healthy looks like.
* :class:`CheckSettings` is the monitor's: bin size, the drop test, the SRM tests' levels and gates,
  the multiple-exposure threshold. Every default and its meaning is documented here, once.

Both validate in ``__post_init__``: a bad value raises a :class:`~xpyrment_sql.errors.ParameterError`
naming the parameter before any query runs, and the checks below trust what they are given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xpyrment_sql.bins import BinSpec, parse_freq
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.stats.anomaly import check_anomaly_parameters, check_drop_method
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION, check_alpha, check_concentration, check_gates

Ratios = Sequence[float] | Mapping[Any, float]
"""Designed ratios: a list aligned with the sorted variant names, or a dict ``{variant: ratio}``."""

SEQUENTIAL_METHODS = ("anytime", "changepoint", "sprt")


@dataclasses.dataclass(frozen=True)
class Design:
    """What the experiment was designed to do.

    Attributes:
        expected_ratios: Designed ratios, a list aligned with the sorted variant names or a dict
            ``{variant: ratio}``; they need not sum to one. Whether they match the variants in the
            data is checked once the data is read.
        control: The control arm, or ``None`` to find it by name (``control``, ``ctrl``, ...).
    """

    expected_ratios: Ratios
    control: Any = None

    def __post_init__(self) -> None:
        check_ratio_values(self.expected_ratios)


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """How the monitor checks a run (defaults as in ``run_telemetry_checks``).

    Attributes:
        freq: Bin size: ``min``, ``<n>min``, ``h``, ``<n>h``, ``D`` or ``W`` (where day and week bins
            start is the monitor's ``tz``, part of how it reads the log, not of these settings).
        window: Bins in the z-score drop test's baseline.
        z_threshold: A z-score below ``-z_threshold`` is a drop; ``None`` for the drop method's
            calibrated default (see ``CALIBRATION.md``).
        drop_threshold: Relative drop the z-score test flags when its baseline has no variance.
        drop_method: ``"seasonal"`` (same bin in earlier days or weeks) or ``"zscore"`` (the seed's).
        srm_alpha: Level of the chi-square SRM test on distinct units.
        sequential_alpha: Level of the sequential SRM test.
        sequential_method: ``"changepoint"`` (the default: the Dirichlet-multinomial mixture on
            cumulative units that also bets on a break at the start of each later day, so a mismatch
            that starts mid-experiment is caught within about a day; see
            :mod:`xpyrment_sql.stats.changepoint` and CALIBRATION.md), ``"anytime"`` (the cumulative
            mixture alone, any number of arms) or ``"sprt"`` (the seed's two-arm SPRT).
        concentration: Prior weight of the anytime-valid test, and the change-point's cumulative ``c0``.
        min_units: No SRM verdict while a variant has fewer units.
        min_deviation: An SRM counts only when some share is off by more than this (absolute).
        max_multiple_exposure_share: Alert when more units than this share are seen under several
            variants; ``None`` skips that check (and its query).
    """

    freq: str = "D"
    window: int = 7
    z_threshold: float | None = None
    drop_threshold: float = 0.5
    drop_method: str = "seasonal"
    srm_alpha: float = 0.001
    sequential_alpha: float = 0.01
    sequential_method: str = "changepoint"
    concentration: float = DEFAULT_CONCENTRATION
    min_units: int = 0
    min_deviation: float = 0.0
    max_multiple_exposure_share: float | None = 0.01

    def __post_init__(self) -> None:
        parse_freq(self.freq)
        check_drop_method(self.drop_method)
        check_anomaly_parameters(self.window, self.z_threshold, self.drop_threshold)
        check_alpha(self.srm_alpha, "srm_alpha")
        check_alpha(self.sequential_alpha, "sequential_alpha")
        check_sequential_method(self.sequential_method)
        check_concentration(self.concentration)
        check_gates(self.min_units, self.min_deviation)
        if self.max_multiple_exposure_share is not None:
            check_max_share(self.max_multiple_exposure_share, "max_multiple_exposure_share")

    def bins(self, tz: str | None = None) -> BinSpec:
        """How timestamps are cut into bins, day and week bins starting at local midnight in ``tz``."""
        return parse_freq(self.freq, tz)


def check_ratio_values(expected_ratios: Ratios) -> None:
    """Reject non-positive ratios before any query runs (alignment is checked against the data)."""
    values = expected_ratios.values() if isinstance(expected_ratios, Mapping) else expected_ratios
    try:
        numbers = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"expected_ratios must be a list of numbers or a dict {{variant: ratio}}; got {expected_ratios!r}"
        ) from exc
    if numbers.size == 0 or not np.all(np.isfinite(numbers)) or np.any(numbers <= 0):
        raise ParameterError(f"expected_ratios must be positive numbers; got {expected_ratios!r}")


def check_sequential_method(method: str) -> str:
    """Return ``method`` if it names a sequential SRM test."""
    if method not in SEQUENTIAL_METHODS:
        raise ParameterError(f"sequential_method={method!r} must be 'anytime', 'changepoint' or 'sprt'")
    return method


def check_max_share(max_share: float, name: str = "max_share") -> float:
    """Return ``max_share`` if it lies strictly between 0 and 1."""
    if isinstance(max_share, bool) or not (
        isinstance(max_share, (int, float, np.number)) and 0 < max_share < 1
    ):
        raise ParameterError(f"{name}={max_share!r} must be a share between 0 and 1 (exclusive)")
    return float(max_share)
