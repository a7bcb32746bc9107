"""Sample ratio mismatch on the whole experiment: chi-square on distinct units, the anytime-valid
mixture test and the seed's two-arm SPRT.

The chi-square test reads distinct units per variant, from its own ``COUNT(DISTINCT)`` query or from a
traffic matrix already fetched (its last cumulative row). The sequential tests need nothing beyond the
traffic matrix: the anytime test reads its cumulative rows, and the SPRT's exact first crossing comes
back with the matrix query (:class:`SprtCrossings`).

A unit seen under two variants counts once in each variant's counts, and the SPRT sequence holds each
(variant, unit) pair at its first exposure: a leak from one arm into another is itself a randomisation
failure, and these tests should see the units it adds to the receiving arm.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.results import (
    AnytimeSRMResult,
    LiveSRMResult,
    SequentialSRMResult,
    TrafficMatrix,
    frozen_array,
)
from xpyrment_sql.settings import Ratios
from xpyrment_sql.source import Source
from xpyrment_sql.stats.changepoint import ChangePointSettings, changepoint_srm
from xpyrment_sql.stats.srm import (
    DEFAULT_CONCENTRATION,
    anytime_srm,
    chi_square_srm,
    expected_shares,
    find_control,
    sprt_coefficients,
    sprt_log_likelihood_ratio,
)

logger = logging.getLogger(__name__)


def live_srm(
    source: Source,
    variant_col: str,
    until: pd.Timestamp | None,
    expected_ratios: Ratios,
    alpha: float,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> LiveSRMResult:
    """Chi-square on distinct units per variant, from one ``COUNT(DISTINCT)`` query."""
    query = queries.units_per_variant(source, variant_col, until)
    units = source.execute(query, "the distinct units per variant").sort_values("variant")
    return chi_square_srm(
        units["units"].to_numpy(),
        expected_ratios,
        tuple(units["variant"].tolist()),
        alpha,
        min_units,
        min_deviation,
    )


def live_srm_from_matrix(
    matrix: TrafficMatrix,
    expected_ratios: Ratios,
    alpha: float,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> LiveSRMResult:
    """The same chi-square test on the matrix's distinct units per variant (no query of its own)."""
    return chi_square_srm(matrix.units, expected_ratios, matrix.variants, alpha, min_units, min_deviation)


def anytime(
    matrix: TrafficMatrix,
    expected_ratios: Ratios,
    alpha: float,
    concentration: float,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> AnytimeSRMResult:
    """The anytime-valid test on the matrix's cumulative units (no query of its own)."""
    return anytime_srm(
        np.cumsum(matrix.new, axis=0),
        expected_ratios,
        matrix.variants,
        alpha,
        concentration,
        matrix.bins,
        min_units,
        min_deviation,
    )


def changepoint(
    matrix: TrafficMatrix,
    expected_ratios: Ratios,
    alpha: float,
    concentration: float = DEFAULT_CONCENTRATION,
    min_units: int = 0,
    min_deviation: float = 0.0,
) -> AnytimeSRMResult:
    """The change-point mixture on the matrix's newly exposed units per bin (no query of its own).

    ``concentration`` is the cumulative term's ``c0`` (the same prior as the anytime test's); ``w``,
    ``c1`` and ``S`` keep their calibrated values
    (:class:`~xpyrment_sql.stats.changepoint.ChangePointSettings`).
    """
    return changepoint_srm(
        matrix.new,
        expected_ratios,
        matrix.variants,
        matrix.bins,
        alpha,
        min_units,
        min_deviation,
        ChangePointSettings(cumulative_concentration=concentration),
    )


SPRT_DELTA = 0.02
"""The seed's distance of the SPRT's alternatives from the designed share, in ``run_telemetry_checks``."""


@dataclasses.dataclass(frozen=True)
class SprtCrossings:
    """The SPRT's first crossing as the traffic matrix query found it, per candidate share.

    Attributes:
        shares: Candidate designed shares of the non-reference arm, as sent in the query.
        other: The non-reference variant (``y = 1`` in the query's sequence); None with one variant.
        stops: Per candidate, ``(stopped_index, stopped_at)``: the 0-based position of the first pair
            whose ``log LR`` reaches ``log(1/alpha)`` and its first exposure, or ``(-1, None)``.
    """

    shares: tuple[float, ...]
    other: Any
    stops: tuple[tuple[int, pd.Timestamp | None], ...]

    @classmethod
    def from_counts(cls, counts: pd.DataFrame, shares: Sequence[float]) -> SprtCrossings:
        """Read the ``other``, ``stop_n{i}`` and ``stop_ts{i}`` columns of the matrix query's result."""
        others = counts.loc[counts["other"] == 1, "variant"].unique()
        stops = []
        for i in range(len(shares)):
            positions = counts[f"stop_n{i}"].dropna()
            if positions.empty:
                stops.append((-1, None))
                continue
            row = positions.idxmin()
            stops.append((int(positions[row]) - 1, pd.Timestamp(counts.loc[row, f"stop_ts{i}"])))
        return cls(tuple(shares), others[0] if len(others) else None, tuple(stops))

    def stop_for(self, share_of_other: float) -> tuple[int, pd.Timestamp | None]:
        """The crossing of the candidate equal (to 1e-12) to the non-reference arm's designed share."""
        for candidate, stop in zip(self.shares, self.stops, strict=True):
            if abs(candidate - share_of_other) <= 1e-12:
                return stop
        raise ValueError(f"no SPRT crossing was computed for share {share_of_other!r}; had {self.shares}")


def sprt_candidate_shares(target_treatment_ratio: float) -> tuple[float, ...]:
    """Shares the non-reference arm can have when the treatment's is ``target_treatment_ratio``."""
    return _distinct_shares((target_treatment_ratio, 1.0 - target_treatment_ratio))


def sprt_shares_for_ratios(expected_ratios: Ratios, delta: float = SPRT_DELTA) -> tuple[float, ...]:
    """Shares a two-arm design gives either arm; empty when it has other than two arms, or when its
    shares leave no room for ``p0 +/- delta`` (then the SPRT is skipped and the query needs none)."""
    if isinstance(expected_ratios, Mapping):
        names: list[Any] = sorted(expected_ratios)
    else:
        names = list(range(len(expected_ratios)))
    if len(names) != 2:
        return ()
    shares = expected_shares(expected_ratios, names)
    if not (shares.min() - delta > 0 and shares.max() + delta < 1):
        return ()
    return _distinct_shares(tuple(float(share) for share in shares))


def _distinct_shares(shares: Sequence[float]) -> tuple[float, ...]:
    """``shares`` without repeats (to 1e-12): an even split needs one crossing, not two."""
    kept: list[float] = []
    for share in shares:
        if all(abs(share - other) > 1e-12 for other in kept):
            kept.append(share)
    return tuple(kept)


def sprt_query(shares: Sequence[float], delta: float, alpha: float) -> queries.SprtSpec | None:
    """What the traffic matrix query needs to find the SPRT's first crossing; None without shares."""
    if not shares:
        return None
    return queries.SprtSpec(
        tuple(sprt_coefficients(share, delta) for share in shares), float(np.log(1.0 / alpha))
    )


def sprt_for_ratios(
    matrix: TrafficMatrix,
    crossings: SprtCrossings | None,
    expected_ratios: Ratios,
    alpha: float,
    delta: float = SPRT_DELTA,
) -> SequentialSRMResult:
    """The seed's two-arm SPRT with the treatment arm's designed share as ``p0``."""
    if len(matrix.variants) != 2:
        return sprt(matrix, crossings, 0.5, delta, alpha)
    shares = expected_shares(expected_ratios, matrix.variants)
    _, treatment = find_control(matrix.variants)
    p0 = float(shares[matrix.variants.index(treatment)])
    if not (p0 - delta > 0 and p0 + delta < 1):
        return SequentialSRMResult(
            False,
            f"Sequential SPRT skipped: the designed treatment share {p0:.4f} leaves no room for "
            f"alternatives at +/- delta={delta}.",
        )
    return sprt(matrix, crossings, p0, delta, alpha)


def sprt(
    matrix: TrafficMatrix,
    crossings: SprtCrossings | None,
    target_treatment_ratio: float,
    delta: float,
    alpha: float,
) -> SequentialSRMResult:
    """Two-arm mixture SPRT: the per-bin LR from the matrix, the exact crossing from the same query.

    ``crossings`` holds the crossing for the non-reference arm's share; by the test's symmetry that
    is the crossing of ``y = 1`` for treatment with ``p0 = target_treatment_ratio``.
    """
    if not matrix.variants:
        return SequentialSRMResult(False, "No assignment data available.")
    if len(matrix.variants) != 2:
        logger.warning("Sequential SRM (SPRT) is only supported for two-arm (binary) experiments.")
        return SequentialSRMResult(False, "Sequential SRM SPRT is only supported for exactly two variants.")
    if crossings is None:
        raise ValueError("a two-arm SPRT needs the crossings the traffic matrix query finds")
    control, treatment = find_control(matrix.variants)
    new_treatment = matrix.new[:, matrix.variants.index(treatment)]
    log_lr = sprt_log_likelihood_ratio(
        np.cumsum(new_treatment), np.cumsum(matrix.new.sum(axis=1)), target_treatment_ratio, delta
    )
    share_of_other = target_treatment_ratio if crossings.other == treatment else 1.0 - target_treatment_ratio
    stopped_index, stopped_at = crossings.stop_for(share_of_other)
    detected = stopped_index >= 0
    with np.errstate(over="ignore"):
        likelihood_ratios = np.exp(log_lr)
    return SequentialSRMResult(
        srm_detected=detected,
        message=f"Sequential SPRT finished. SRM detected: {detected} at index {stopped_index}.",
        stopped_index=stopped_index,
        running_likelihood_ratios=frozen_array(likelihood_ratios),
        running_log_likelihood_ratios=frozen_array(log_lr),
        bins=matrix.bins,
        stopped_at=stopped_at,
        control=control,
        treatment=treatment,
        target_treatment_ratio=target_treatment_ratio,
        delta=delta,
        alpha=alpha,
    )
