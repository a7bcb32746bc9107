"""Records of the traffic checks: the bins x variants matrix and the traffic-drop test on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from xpyrment_sql.results.base import Result


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

    Examples:
        >>> import numpy as np
        >>> import pandas as pd
        >>> days = pd.date_range("2026-01-01", periods=3, freq="D", name="bin")
        >>> active = np.array([[10, 12], [8, 9], [7, 7]])
        >>> new = np.array([[10, 12], [3, 4], [1, 0]])
        >>> matrix = TrafficMatrix(days, ("control", "treatment"), active, new, "D")
        >>> matrix.units
        array([14, 16])
        >>> matrix.cumulative()
        variant     control  treatment
        bin
        2026-01-01       10         12
        2026-01-02       13         16
        2026-01-03       14         16
        >>> matrix["freq"], matrix.complete_bins
        ('D', 3)
    """

    bins: pd.DatetimeIndex
    variants: tuple[Any, ...]
    active: npt.NDArray[np.int64]
    new: npt.NDArray[np.int64]
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
    def units(self) -> npt.NDArray[np.int64]:
        """Distinct units per variant over the whole log (the last cumulative row)."""
        units: npt.NDArray[np.int64] = self.new.sum(axis=0)
        return units
