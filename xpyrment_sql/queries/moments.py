"""Ibis expressions only: the one grouped query of per-variant moments for every metric at once.

The query returns one row per variant. For metric ``i`` it holds the unit count ``m{i}__n`` and the
means, sample variances and covariances of its numerator, denominator and covariate (the names are
the fields of :class:`xpyrment_sql.stats.effects.ArmMoments`, see :func:`moment_column`).

Means are taken about a shift, in the same query. A float64 sum of values near ``1e9`` whose spread is
``1`` rounds by ``eps * 1e9`` at every addition, so the backend's ``AVG`` of ``n`` of them is off by
about ``eps * 1e9 * sqrt(n)`` and a difference of two arms' means loses digits (DuckDB's ``AVG`` of
doubles does). With ``s`` the value of one row (``y / d`` of one row for a ratio), the query averages
the centred numerator ``Z = Y - s * D`` per unit (``D = 1`` for a mean), whose values are of the
order of the spread, and returns ``s`` as ``m{i}__shift``; the metric is ``R = s + mean(Z) / mean(D)``.
The shift is read from a ``LIMIT 1`` subquery cross-joined as one row, so it costs neither a second
pass over the rows nor a second round trip, and it runs on engines without scalar subqueries. Any
``s`` is exact; a typical one keeps the digits: ``|mean(Y) - s|`` is at most ``sqrt(n)`` standard
deviations, so the rounding of ``mean(Z)`` stays at about ``eps`` times the standard deviation. A
covariate is centred the same way (only differences of its means enter CUPED). A mean summed over
several rows per unit is centred by one row's value, which centres the unit totals when units have
one row each; units with several rows each have totals that spread as widely as their row counts.

Variances and covariances use the backend's ``VAR_SAMP`` / ``COVAR_SAMP`` on the centred values: every
backend here (DuckDB, PostgreSQL, Spark, DataFusion, Polars; SQLite through Ibis' Welford UDF) computes
them with streaming updates, not ``sum(x^2) - sum(x)^2 / n``, which cancels catastrophically at
``1e9`` (its float64 rounding of ``sum(x^2) ~ n * 1e18`` is larger than the whole variance); on
centred values neither form loses digits. For a ratio, the delta method's ``Var(Y - R D)`` is
``Var(Z - (R - s) D)``, free of the cancellation ``Var Y - 2 R Cov(Y, D) + R^2 Var D`` suffers when
``Y`` is near ``s D``.

NULL is a missing value: a unit whose value (summed over its rows) is NULL is left out of the metric.
NaN and infinite per-unit values are counted (``nonfinite__<column>``) so that the caller can reject
them by name; they would otherwise turn every moment into NaN, or, for a positive share, compare as
greater than zero on some engines and not on others.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import sys
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.queries.rows import before
from xpyrment_sql.source import Source

VARIANT = "variant"
COVARIATE_CONFLICTS = "covariate_conflicts"
_COVARIATE = "covariate__value"
_COVARIATE_LOW = "covariate__low"
_COVARIATE_SHIFT = "shift__covariate"


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


def nonfinite_column(column: str) -> str:
    """Name of the count of units whose value of ``column`` (summed per unit) is NaN or infinite."""
    return f"nonfinite__{column}"


def variant_moments(
    source: Source,
    variant_col: str,
    specs: Sequence[MomentSpec],
    unit_col: str | None = None,
    covariate_col: str | None = None,
    until: pd.Timestamp | None = None,
    *,
    keys: Mapping[str, str] | None = None,
    keep: ir.BooleanValue | None = None,
) -> ir.Table:
    """Per-variant count, means, variances and covariances of every metric: one grouped query.

    With ``unit_col``, rows are first summed per (variant, unit), so each unit is one observation; the
    covariate is a per-unit value and is read once per unit (``COVARIATE_CONFLICTS`` counts units
    whose rows disagree on it). A unit enters a metric's moments only when every column that metric
    reads (and the covariate) is non-null for it: ``n`` can differ between metrics. Numerators and
    the covariate are centred on a shift (module docstring).

    Args:
        source: The log.
        variant_col: Variant column; rows with a null variant (or unit) are ignored.
        specs: One entry per metric.
        unit_col: Unit column to sum over first, or ``None`` when rows are already units.
        covariate_col: Pre-period covariate column for CUPED, or ``None``.
        until: Ignore rows at or after this instant, as every check does (needs the source's time column).
        keys: More grouping keys, output name -> column (the fleet's experiment): one row per
            (keys, variant).
        keep: Only rows where this condition (an expression on ``source.table``) holds.

    Returns:
        One row per variant (and ``keys``): column ``variant``, the ``moment_column`` statistics
        (``m{i}__shift`` among them), ``nonfinite_column`` counts of every column read and, with a unit and a
        covariate, ``COVARIATE_CONFLICTS``.
    """
    table = source.table
    rows_kept = table[variant_col].notnull()
    if unit_col is not None:
        rows_kept &= table[unit_col].notnull()
    if until is not None:
        ts = source.timestamp()
        rows_kept &= before(ts, until)
    if keep is not None:
        rows_kept &= keep
    rows = table.filter(rows_kept)
    grouping = {name: rows[column].name(name) for name, column in (keys or {}).items()}
    value_cols = sorted({s.numerator for s in specs} | {s.denominator for s in specs if s.denominator})
    values = {_value_name(col): _as_float(rows[col], source) for col in value_cols}
    aggregates: dict[str, ir.Scalar] = {}
    if unit_col is None:
        extra = {} if covariate_col is None else {_COVARIATE: _as_float(rows[covariate_col], source)}
        units = rows.select(**grouping, **{VARIANT: rows[variant_col]}, **values, **extra)
    else:
        per_unit = {name: value.sum() for name, value in values.items()}
        if covariate_col is not None:
            covariate = _as_float(rows[covariate_col], source)
            per_unit |= {_COVARIATE: covariate.max(), _COVARIATE_LOW: covariate.min()}
        unit_keys = [rows[variant_col].name(VARIANT), rows[unit_col].name("unit__key")]
        units = rows.group_by([*grouping.values(), *unit_keys]).aggregate(**per_unit)
    shifts = _shifts(source, specs, covariate_col)
    if shifts is not None:
        units = units.cross_join(shifts)
    if unit_col is not None and covariate_col is not None:
        disagree = units[_COVARIATE] != units[_COVARIATE_LOW]
        aggregates[COVARIATE_CONFLICTS] = units.count(where=disagree)
    checked = {col: units[_value_name(col)] for col in value_cols}
    if covariate_col is not None:
        checked[covariate_col] = units[_COVARIATE]
    for column, value in checked.items():
        aggregates[nonfinite_column(column)] = units.count(where=_non_finite(value))
    for index, spec in enumerate(specs):
        aggregates |= _metric_moments(units, index, spec, covariate_col is not None)
    return units.group_by([*grouping, VARIANT]).aggregate(**aggregates)


def _shifts(source: Source, specs: Sequence[MomentSpec], covariate_col: str | None) -> ir.Table | None:
    """One row: per (numerator, denominator) pair and for the covariate, a finite value of one row.

    ``y`` for a mean, ``y / d`` for a ratio (a CASE, so that no engine divides by ``d = 0``), ``x`` for
    the covariate; 0 when no row has one. Each is ``MAX`` over a ``LIMIT 1`` subquery, so the row
    exists even when the subquery is empty (a cross join with an empty table would drop every unit).
    None when no metric needs a shift.
    """
    table = source.table
    candidates: dict[str, ir.FloatingValue] = {}
    for spec in specs:
        if spec.positive_share:
            continue
        numerator = _as_float(table[spec.numerator], source)
        if spec.denominator is None:
            candidates[_shift_name(spec)] = numerator
        else:
            denominator = _as_float(table[spec.denominator], source)
            ratio = ibis.ifelse(denominator != 0, numerator / denominator, ibis.null("float64"))
            candidates[_shift_name(spec)] = ratio
    if covariate_col is not None:
        candidates[_COVARIATE_SHIFT] = _as_float(table[covariate_col], source)
    one_rows = []
    for name, value in candidates.items():
        first = table.filter(_finite(value)).select(value=value).limit(1)
        one_rows.append(first.aggregate(**{name: ibis.coalesce(first.value.max(), 0.0)}))
    return functools.reduce(lambda left, right: left.cross_join(right), one_rows) if one_rows else None


def _shift_name(spec: MomentSpec) -> str:
    return f"shift__{spec.numerator}__{spec.denominator or ''}"


def _finite(value: ir.FloatingValue) -> ir.BooleanValue:
    """Within the float64 range: false for NaN (IEEE engines compare it false, DuckDB, PostgreSQL and
    Spark as greater than every number; SQLite, which has no IsNan, has no NaN) and +/-inf, NULL for
    NULL."""
    return value.abs() <= sys.float_info.max


def _non_finite(value: ir.FloatingValue) -> ir.BooleanValue:
    """NaN or +/-inf (not NULL)."""
    return value.notnull() & ~_finite(value)


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
    """Aggregates of one metric over the units where all its columns are non-null.

    The numerator is centred, ``Z = Y - s D`` (``D = 1`` for a mean), and the covariate ``X - s_X``;
    a positive share (0 or 1) is not shifted.
    """
    numerator = units[_value_name(spec.numerator)]
    series = {"numerator": numerator}
    if spec.denominator is not None:
        series["denominator"] = units[_value_name(spec.denominator)]
    if has_covariate:
        series["covariate"] = units[_COVARIATE]
    keep = functools.reduce(operator.and_, (column.notnull() for column in series.values()))
    out = {moment_column(index, "n"): units.count(where=keep)}
    if spec.positive_share:
        series["numerator"] = ibis.ifelse(numerator > 0, 1, 0).cast("float64")
    else:
        shift = units[_shift_name(spec)]
        denominator = series.get("denominator")
        series["numerator"] = numerator - (shift if denominator is None else shift * denominator)
        out[moment_column(index, "shift")] = shift.max()
    if has_covariate:
        series["covariate"] = series["covariate"] - units[_COVARIATE_SHIFT]
    names = list(series)
    for position, name in enumerate(names):
        out[moment_column(index, f"{name}_mean")] = series[name].mean(where=keep)
        out[moment_column(index, f"{name}_var")] = series[name].var(how="sample", where=keep)
        for other in names[position + 1 :]:
            out[moment_column(index, f"{name}_{other}_cov")] = series[name].cov(
                series[other], how="sample", where=keep
            )
    return out
