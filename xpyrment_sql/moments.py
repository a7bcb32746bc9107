"""Ibis expressions only: the one grouped query of per-variant moments for every metric at once.

The query returns one row per variant. For metric ``i`` it holds the unit count ``m{i}__n`` and the
means, sample variances and covariances of its numerator, denominator and covariate (the names are
the fields of :class:`xpyrment_sql.stats.effects.ArmMoments`, see :func:`moment_column`). Variances
and covariances use the backend's ``VAR_SAMP`` / ``COVAR_SAMP`` aggregates: DuckDB and PostgreSQL
compute them with streaming updates that keep full precision when the mean is large against the spread,
where ``sum(x^2) - sum(x)^2 / n`` in float64 cancels catastrophically. Means are the backend's ``AVG``,
whose float64 rounding grows like ``eps * |mean| * sqrt(n)``: it matters only when the mean is many
orders of magnitude above the spread (1e9 on 1) on tens of millions of units.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.queries import instant
from xpyrment_sql.source import Source

VARIANT = "variant"
COVARIATE_CONFLICTS = "covariate_conflicts"
_COVARIATE = "covariate__value"
_COVARIATE_LOW = "covariate__low"


@dataclasses.dataclass(frozen=True)
class MomentSpec:
    """The columns one metric reads.

    Attributes:
        numerator: Value column (``Y``).
        denominator: Denominator column (``D``) of a ratio metric, else ``None`` (``D = 1``).
        positive_share: Replace the per-unit numerator by ``1`` if it is ``> 0`` (or true), else ``0``.
    """

    numerator: str
    denominator: str | None = None
    positive_share: bool = False


def moment_column(index: int, field: str) -> str:
    """Name of statistic ``field`` (an ``ArmMoments`` field) of metric ``index`` in the query result."""
    return f"m{index}__{field}"


def variant_moments(
    source: Source,
    variant_col: str,
    specs: Sequence[MomentSpec],
    unit_col: str | None = None,
    covariate_col: str | None = None,
    until: pd.Timestamp | None = None,
) -> ir.Table:
    """Per-variant count, means, variances and covariances of every metric: one grouped query.

    With ``unit_col``, rows are first summed per (variant, unit), so each unit is one observation; the
    covariate is a per-unit value and is read once per unit (``COVARIATE_CONFLICTS`` counts units
    whose rows disagree on it). A unit enters a metric's moments only when every column that metric
    reads (and the covariate) is non-null for it: ``n`` can differ between metrics.

    Args:
        source: The log.
        variant_col: Variant column; rows with a null variant (or unit) are ignored.
        specs: One entry per metric.
        unit_col: Unit column to sum over first, or ``None`` when rows are already units.
        covariate_col: Pre-period covariate column for CUPED, or ``None``.
        until: Ignore rows after this instant (needs the source's time column).

    Returns:
        One row per variant: column ``variant``, the ``moment_column`` statistics and, with a unit
        and a covariate, ``COVARIATE_CONFLICTS``.
    """
    table = source.table
    keep = table[variant_col].notnull()
    if unit_col is not None:
        keep &= table[unit_col].notnull()
    if until is not None:
        ts = source.timestamp()
        keep &= ts <= instant(ts, until)
    rows = table.filter(keep)
    value_cols = sorted({s.numerator for s in specs} | {s.denominator for s in specs if s.denominator})
    values = {_value_name(col): _as_float(rows[col], source) for col in value_cols}
    aggregates: dict[str, ir.Scalar] = {}
    if unit_col is None:
        extra = {} if covariate_col is None else {_COVARIATE: _as_float(rows[covariate_col], source)}
        units = rows.select(**{VARIANT: rows[variant_col]}, **values, **extra)
    else:
        per_unit = {name: value.sum() for name, value in values.items()}
        if covariate_col is not None:
            covariate = _as_float(rows[covariate_col], source)
            per_unit |= {_COVARIATE: covariate.max(), _COVARIATE_LOW: covariate.min()}
        keys = [rows[variant_col].name(VARIANT), rows[unit_col].name("unit__key")]
        units = rows.group_by(keys).aggregate(**per_unit)
        if covariate_col is not None:
            disagree = units[_COVARIATE] != units[_COVARIATE_LOW]
            aggregates[COVARIATE_CONFLICTS] = units.count(where=disagree)
    for index, spec in enumerate(specs):
        aggregates |= _metric_moments(units, index, spec, covariate_col is not None)
    return units.group_by(VARIANT).aggregate(**aggregates)


def _value_name(column: str) -> str:
    return f"value__{column}"


def _as_float(column: ir.Column, source: Source) -> ir.FloatingColumn:
    """The column as float64; booleans become 1.0 / 0.0 with NULL kept (PostgreSQL cannot cast them).

    The CASE yields integers cast to float64: a ``1.0`` literal would be DECIMAL(2,1) on Spark, whose
    sums and averages are then rounded to a fixed scale.
    """
    if source.schema[column.get_name()].is_boolean():
        return ibis.cases((column, 1), (~column, 0)).cast("float64")
    return column.cast("float64")


def _metric_moments(
    units: ir.Table, index: int, spec: MomentSpec, has_covariate: bool
) -> dict[str, ir.Scalar]:
    """Aggregates of one metric over the units where all its columns are non-null."""
    series = {"numerator": units[_value_name(spec.numerator)]}
    if spec.denominator is not None:
        series["denominator"] = units[_value_name(spec.denominator)]
    if has_covariate:
        series["covariate"] = units[_COVARIATE]
    keep = functools.reduce(operator.and_, (column.notnull() for column in series.values()))
    if spec.positive_share:
        series["numerator"] = ibis.ifelse(series["numerator"] > 0, 1, 0).cast("float64")
    out = {moment_column(index, "n"): units.count(where=keep)}
    names = list(series)
    for position, name in enumerate(names):
        out[moment_column(index, f"{name}_mean")] = series[name].mean(where=keep)
        out[moment_column(index, f"{name}_var")] = series[name].var(how="sample", where=keep)
        for other in names[position + 1 :]:
            out[moment_column(index, f"{name}_{other}_cov")] = series[name].cov(
                series[other], how="sample", where=keep
            )
    return out
