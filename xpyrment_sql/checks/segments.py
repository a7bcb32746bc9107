"""SRM per segment: where in the experiment the mismatch lives (one query, see ``queries.segment_units``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import SegmentSRMResult
from xpyrment_sql.settings import Ratios
from xpyrment_sql.source import Source
from xpyrment_sql.stats.segment_srm import segment_srm


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
