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

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.bins import as_utc, parse_freq
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
    sprt_search_bins,
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


def sprt_for_ratios(
    source: Source,
    matrix: TrafficMatrix,
    expected_ratios: Ratios,
    alpha: float,
    tz: str | None,
    until: pd.Timestamp | None,
    delta: float = 0.02,
) -> SequentialSRMResult:
    """The seed's two-arm SPRT with the treatment arm's designed share as ``p0``."""
    if len(matrix.variants) != 2:
        return sprt(source, matrix, 0.5, delta, alpha, tz, until)
    shares = expected_shares(expected_ratios, matrix.variants)
    _, treatment = find_control(matrix.variants)
    p0 = float(shares[matrix.variants.index(treatment)])
    if not (p0 - delta > 0 and p0 + delta < 1):
        return SequentialSRMResult(
            False,
            f"Sequential SPRT skipped: the designed treatment share {p0:.4f} leaves no room for "
            f"alternatives at +/- delta={delta}.",
        )
    return sprt(source, matrix, p0, delta, alpha, tz, until)


def sprt(
    source: Source,
    matrix: TrafficMatrix,
    target_treatment_ratio: float,
    delta: float,
    alpha: float,
    tz: str | None,
    until: pd.Timestamp | None,
) -> SequentialSRMResult:
    """Two-arm mixture SPRT: the per-bin LR from the matrix, the exact crossing from one query if needed."""
    if not matrix.variants:
        return SequentialSRMResult(False, "No assignment data available.")
    if len(matrix.variants) != 2:
        logger.warning("Sequential SRM (SPRT) is only supported for two-arm (binary) experiments.")
        return SequentialSRMResult(False, "Sequential SRM SPRT is only supported for exactly two variants.")
    control, treatment = find_control(matrix.variants)
    new_treatment = matrix.new[:, matrix.variants.index(treatment)]
    new_total = matrix.new.sum(axis=1)
    log_lr = sprt_log_likelihood_ratio(
        np.cumsum(new_treatment), np.cumsum(new_total), target_treatment_ratio, delta
    )
    search = sprt_search_bins(new_treatment, new_total, target_treatment_ratio, delta, alpha)
    crossing = pd.DataFrame({"stopped_index": [], "stopped_at": []})
    if search is not None:
        first, last = search
        edges = parse_freq(matrix.freq, tz).labels(
            np.array([matrix.first_key + first, matrix.first_key + last + 1])
        )
        window = queries.SequenceWindow(
            since=as_utc(edges[0]),
            before=as_utc(edges[1]),
            units_before=int(new_total[:first].sum()),
            treatment_before=int(new_treatment[:first].sum()),
        )
        purpose = "the SPRT's first-crossing query (check_sequential_srm, or sequential_method='sprt')"
        source.require_window_functions(purpose)
        crossing = source.execute(
            queries.first_sprt_crossing(
                source,
                matrix.variant_col,
                treatment,
                sprt_coefficients(target_treatment_ratio, delta),
                float(np.log(1.0 / alpha)),
                window,
                until,
            ),
            purpose,
        )
    stopped_index = int(crossing["stopped_index"].iloc[0]) if len(crossing) else -1
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
        stopped_at=pd.Timestamp(crossing["stopped_at"].iloc[0]) if detected else None,
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
    """Distinct units per (segment, variant) from one grouped query, tested by ``stats.segment_srm``."""
    query = queries.segment_units(source, variant_col, dimension_cols, until)
    frame = source.execute(query, "the per-segment units query (check_srm_by)")
    names = [f"dim{i}" for i in range(len(dimension_cols))]
    variants = tuple(sorted(pd.unique(frame["variant"]).tolist()))
    table = frame.groupby([*names, "variant"], dropna=False)["units"].sum().unstack("variant", fill_value=0)
    table = table.reindex(columns=list(variants), fill_value=0)
    segments = [key if isinstance(key, tuple) else (key,) for key in table.index]
    segments = [tuple(None if pd.isna(v) else v for v in key) for key in segments]
    return segment_srm(
        table.to_numpy(dtype=float),
        segments,
        dimension_cols,
        variants,
        expected_ratios,
        alpha,
        min_expected_units,
    )


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
