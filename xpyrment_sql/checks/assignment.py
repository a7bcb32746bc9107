"""Checks that units reach the variants as designed: sequential SRM, multiple exposure, SRM per segment.

Each function runs at most the queries it needs (built in ``queries``), hands the small result to a
pure function in ``stats/`` and returns a record; :class:`~xpyrment_sql.monitor.LiveMonitor`'s methods
are thin wrappers around them.

A unit seen under two variants counts once in each variant's traffic and SRM counts, and the SPRT
sequence holds each (variant, unit) pair at its first exposure. Those units are not dropped: a
leak from one arm into another is itself a randomisation failure, and the SRM checks should still
see the extra units it adds to the receiving arm. :func:`multiple_exposure` reports how many there are.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import (
    AnytimeSRMResult,
    MultipleExposureResult,
    SegmentSRMResult,
    SequentialSRMResult,
    TrafficMatrix,
    frozen_array,
)
from xpyrment_sql.source import Source
from xpyrment_sql.stats.segment_srm import segment_srm
from xpyrment_sql.stats.srm import (
    anytime_srm,
    expected_shares,
    find_control,
    sprt_coefficients,
    sprt_log_likelihood_ratio,
)

logger = logging.getLogger(__name__)

Ratios = Sequence[float] | Mapping[Any, float]
SEQUENTIAL_METHODS = ("anytime", "sprt")


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
        raise ParameterError(f"sequential_method={method!r} must be 'anytime' or 'sprt'")
    return method


def check_max_share(max_share: float, name: str = "max_share") -> float:
    """Return ``max_share`` if it lies strictly between 0 and 1."""
    if isinstance(max_share, bool) or not (
        isinstance(max_share, (int, float, np.number)) and 0 < max_share < 1
    ):
        raise ParameterError(f"{name}={max_share!r} must be a share between 0 and 1 (exclusive)")
    return float(max_share)


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


def multiple_exposure(
    source: Source, variant_col: str, until: pd.Timestamp | None, max_share: float
) -> MultipleExposureResult:
    """Units seen under more than one variant, per pair of variants (one grouped query).

    ``share = multiple_units / units``; the check fires when ``share > max_share``.
    """
    query = queries.multiple_exposure_counts(source, variant_col, until)
    frame = source.execute(query, "the multiple-exposure query (check_multiple_exposure)")
    units = int(frame["units"].iloc[0])
    multiple = int(frame["multiple"].fillna(0).iloc[0])
    pairs = frame.dropna(subset=["pair_units"])
    pairs = pd.DataFrame(
        {
            "first_variant": pairs["first_variant"].tolist(),
            "second_variant": pairs["second_variant"].tolist(),
            "units": pairs["pair_units"].to_numpy(dtype=np.int64),
        }
    )
    pairs = pairs.sort_values(["units", "first_variant"], ascending=[False, True], kind="stable")
    pairs = pairs.reset_index(drop=True)
    share = multiple / units if units else 0.0
    detected = share > max_share
    head = (
        f"{multiple:,} of {units:,} units ({share:.2%}) were seen under more than one variant"
        f"{', above' if detected else ', within'} max_share={max_share:.2%}."
    )
    shown = "; ".join(
        f"{r.first_variant} & {r.second_variant}: {r.units:,}" for r in pairs.head(3).itertuples()
    )
    return MultipleExposureResult(
        multiple_exposure_detected=detected,
        message=f"{head} Units shared per pair: {shown}." if shown else head,
        units=units,
        multiple_units=multiple,
        share=share,
        max_share=max_share,
        pairs=pairs,
    )


def srm_by_segment(
    source: Source,
    variant_col: str,
    dimension_cols: Sequence[str],
    until: pd.Timestamp | None,
    expected_ratios: Ratios,
    alpha: float,
    min_expected_units: float,
) -> SegmentSRMResult:
    """Distinct units per segment, per dimension and overall from one query (``queries.segment_units``),
    tested by ``stats.segment_srm``: the overall test is ``check_live_srm``'s."""
    query = queries.segment_units(source, variant_col, dimension_cols, until)
    frame = source.execute(query, "the per-segment units query (check_srm_by)")
    names = [f"dim{i}" for i in range(len(dimension_cols))]
    variants = tuple(sorted(pd.unique(frame["variant"]).tolist()))
    table = _units_by(frame[frame["part"] == "segment"], names, variants)
    segments = [key if isinstance(key, tuple) else (key,) for key in table.index]
    segments = [tuple(None if pd.isna(v) else v for v in key) for key in segments]
    overall = _units_by(frame[frame["part"] == "overall"], [], variants)
    per_dimension = None
    if len(names) > 1:
        per_dimension = {
            column: _units_by(frame[frame["part"] == name], [name], variants).to_numpy(dtype=float)
            for name, column in zip(names, dimension_cols, strict=True)
        }
    return segment_srm(
        table.to_numpy(dtype=float),
        segments,
        dimension_cols,
        variants,
        expected_ratios,
        alpha,
        min_expected_units,
        overall_units=overall.to_numpy(dtype=float).sum(axis=0),
        dimension_counts=per_dimension,
    )


def _units_by(frame: pd.DataFrame, keys: Sequence[str], variants: Sequence[Any]) -> pd.DataFrame:
    """``units`` as a ``keys x variants`` table (one row when ``keys`` is empty); absent cells are 0."""
    if keys:
        table = frame.groupby([*keys, "variant"], dropna=False)["units"].sum()
        table = table.unstack("variant", fill_value=0)
    else:
        table = frame.groupby("variant")["units"].sum().to_frame().T
    return table.reindex(columns=list(variants), fill_value=0)


def check_dimension_cols(
    source: Source, dimension_cols: str | Sequence[str], variant_col: str
) -> tuple[str, ...]:
    """The dimension columns as a tuple, each a column of the data other than the variant and unit."""
    columns = (dimension_cols,) if isinstance(dimension_cols, str) else tuple(dimension_cols)
    if not columns:
        raise ParameterError("dimension_cols must name at least one column to segment by")
    for column in columns:
        source.require_column(column, "dimension_cols")
        if column in (variant_col, source.unit_col):
            raise ParameterError(
                f"dimension_cols={column!r} is the {'variant' if column == variant_col else 'unit'} "
                "column; segment by another column (e.g. platform or app version)"
            )
    if len(set(columns)) != len(columns):
        raise ParameterError(f"dimension_cols={list(columns)!r} names a column twice")
    return columns
