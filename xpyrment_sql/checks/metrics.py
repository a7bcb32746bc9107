"""Experiment metrics computed from one grouped query of per-variant moments.

A metric names the columns it reads; :func:`calculate_metrics` sends one query for all metrics
(:func:`xpyrment_sql.queries.moments.variant_moments`: per unit sums, then per variant count, means, variances
and covariances) and hands the few numbers per variant to :mod:`xpyrment_sql.stats.effects`.

* :class:`MeanMetric`: mean of a value per unit, Welch's t-test.
* :class:`RatioMetric`: ``sum(numerator) / sum(denominator)`` over units (e.g. revenue per session),
  delta method and Welch's t-test.
* :class:`ProportionMetric`: share of units whose value is ``> 0`` (or true), z-test.

Guardrails on these metrics live in :mod:`xpyrment_sql.checks.guardrails`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import ibis.expr.datatypes as dt
import pandas as pd

from xpyrment_sql.errors import ColumnError, DataError, ParameterError, listed
from xpyrment_sql.queries import moments
from xpyrment_sql.results.metrics import MetricResult, MetricsReport
from xpyrment_sql.source import Source, open_source
from xpyrment_sql.stats.effects import ArmMoments, compare
from xpyrment_sql.stats.srm import check_alpha, find_control


@dataclasses.dataclass(frozen=True)
class Metric:
    """Base of every metric: a name and the columns it reads (validated at construction)."""

    name: str
    proportion: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(f"name={self.name!r}: a metric needs a non-empty string name")
        for parameter, column in self.columns:
            if not isinstance(column, str) or not column:
                raise ParameterError(f"metric {self.name!r}: {parameter}={column!r} must be a column name")

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """``(parameter, column)`` pairs of the columns the metric reads."""
        raise NotImplementedError

    @property
    def spec(self) -> moments.MomentSpec:
        """What the moments query reads for this metric."""
        raise NotImplementedError

    def calculate(
        self,
        data: Any,
        variant_col: str = "variant",
        control: Any = None,
        unit_col: str | None = None,
        covariate_col: str | None = None,
        alpha: float = 0.05,
    ) -> MetricsReport:
        """This metric, every treatment arm against control (see :func:`calculate_metrics`).

        Args:
            data: Anything :class:`~xpyrment_sql.LiveMonitor` accepts except a connection URL (pass an
                Ibis table from ``ibis.connect(url).table(name)`` instead), or a ``Source``.
            variant_col: Variant column.
            control: Control variant; default the first sorted name containing ``ctrl``/``control``,
                else the first sorted name.
            unit_col: Sum rows per unit of this column first; ``None`` when rows are units.
            covariate_col: Pre-period covariate for CUPED.
            alpha: The CIs cover ``1 - alpha``.
        """
        source = data if isinstance(data, Source) else open_metric_source(data, variant_col)
        return calculate_metrics(source, [self], variant_col, control, unit_col, covariate_col, alpha=alpha)


@dataclasses.dataclass(frozen=True)
class MeanMetric(Metric):
    """Mean over units of ``value_col`` (summed per unit first when a unit column is given).

    Args:
        name: Name reported in results.
        value_col: Numeric (or boolean, counted as 0/1) column.
    """

    value_col: str

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("value_col", self.value_col),)

    @property
    def spec(self) -> moments.MomentSpec:
        return moments.MomentSpec(self.value_col)


@dataclasses.dataclass(frozen=True)
class RatioMetric(Metric):
    """``mean(numerator) / mean(denominator)`` over units, e.g. orders per session.

    The per-unit variance comes from the delta method, ``(Var N - 2 Cov(N,D) N/D + Var D N^2/D^2) / D^2``
    with ``N``, ``D`` the means (Deng, Knoblich & Lu, 2018).

    Args:
        name: Name reported in results.
        numerator_col: Numeric column summed into the numerator.
        denominator_col: Numeric column summed into the denominator; its mean must not be 0 in any arm.
    """

    numerator_col: str
    denominator_col: str

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("numerator_col", self.numerator_col), ("denominator_col", self.denominator_col))

    @property
    def spec(self) -> moments.MomentSpec:
        return moments.MomentSpec(self.numerator_col, self.denominator_col)


@dataclasses.dataclass(frozen=True)
class ProportionMetric(Metric):
    """Share of units whose ``value_col`` (summed per unit) is ``> 0``, or true for a boolean column.

    Args:
        name: Name reported in results.
        value_col: Numeric or boolean column.
    """

    value_col: str
    proportion: ClassVar[bool] = True

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("value_col", self.value_col),)

    @property
    def spec(self) -> moments.MomentSpec:
        return moments.MomentSpec(self.value_col, positive_share=True)


def calculate_metrics(
    source: Source,
    metrics: Sequence[Metric],
    variant_col: str,
    control: Any = None,
    unit_col: str | None = None,
    covariate_col: str | None = None,
    *,
    alpha: float = 0.05,
    until: pd.Timestamp | None = None,
) -> MetricsReport:
    """Every metric, every treatment arm against control, from one grouped query.

    Args:
        source: The log.
        metrics: Metrics with distinct names.
        variant_col: Variant column.
        control: Control variant; default the seed's rule (``stats.srm.find_control``).
        unit_col: Sum rows per unit of this column first (the randomisation unit); ``None`` when
            each row is a unit.
        covariate_col: Pre-period covariate, one value per unit, for CUPED (theta from control and
            treatment pooled); each result then reports its ``variance_reduction``.
        alpha: The CIs cover ``1 - alpha``.
        until: Ignore rows at or after this aware ``pandas.Timestamp`` (the source needs a time column).

    Raises:
        ParameterError: no metrics, duplicate names, a bad ``alpha`` or a ``control`` not in the data.
        ColumnError: a column is missing or not numeric/boolean.
        DataError: fewer than two variants, fewer than two units in an arm, a ratio whose denominator
            sums to zero in an arm, a covariate that varies within a unit, or a NaN or infinite value
            (per unit) in a column a metric reads. NULL is a missing value: a unit whose value is NULL
            is left out of that metric (pandas and pyarrow inputs arrive with NaN as NULL).
    """
    metrics = _distinct_metrics(metrics)
    check_alpha(alpha)
    if until is not None and not source.time_col:
        raise ParameterError("until= needs a source opened with a time column (open_source(time_col=...))")
    check_metric_columns(source, metrics, variant_col, unit_col, covariate_col)
    query = moments.variant_moments(
        source, variant_col, [m.spec for m in metrics], unit_col, covariate_col, until
    )
    frame = source.execute(query, "the metric moments query (calculate_metrics, guardrails)")
    return metrics_from_moments(frame, metrics, variant_col, control, unit_col, covariate_col, alpha=alpha)


def metrics_from_moments(
    frame: pd.DataFrame,
    metrics: Sequence[Metric],
    variant_col: str,
    control: Any = None,
    unit_col: str | None = None,
    covariate_col: str | None = None,
    *,
    alpha: float = 0.05,
    positions: Sequence[int] | None = None,
) -> MetricsReport:
    """Every metric, every treatment arm against control, from the moments query's rows (no query).

    ``frame`` holds :func:`~xpyrment_sql.queries.moments.variant_moments`' columns, one row per
    variant; ``positions`` are the metrics' indices in that query (default ``0, 1, ...``: the query
    was built for exactly ``metrics``). Raises what :func:`calculate_metrics` raises for the data.
    """
    frame = frame.sort_values(moments.VARIANT).set_index(moments.VARIANT)
    if covariate_col is not None and unit_col is not None:
        conflicts = int(frame[moments.COVARIATE_CONFLICTS].sum())
        if conflicts:
            raise DataError(
                f"covariate_col={covariate_col!r} takes different values within {conflicts} unit(s) of "
                f"unit_col={unit_col!r}; expected one pre-period value per unit"
            )
    _check_finite(frame, metrics, covariate_col)
    variants = tuple(frame.index)
    control = _resolve_control(variants, control, variant_col)
    treatments = tuple(v for v in variants if v != control)
    results: list[MetricResult] = []
    for index, metric in zip(positions or range(len(metrics)), metrics, strict=True):
        arms = {v: _arm_moments(frame, index, metric, v) for v in variants}
        results.extend(
            compare(
                metric.name,
                control,
                treatment,
                arms[control],
                arms[treatment],
                alpha=alpha,
                proportion=metric.proportion,
                use_covariate=covariate_col is not None,
            )
            for treatment in treatments
        )
    return MetricsReport(tuple(results), control, treatments, variant_col, unit_col, covariate_col)


def open_metric_source(data: Any, variant_col: str = "variant") -> Source:
    """``data`` as a :class:`Source` with no time role, for metric calculations (metrics read no
    timestamps): :func:`~xpyrment_sql.source.open_source` with ``time_col=None``."""
    return open_source(data, time_col=None, variant_col=variant_col)


def _distinct_metrics(metrics: Sequence[Metric]) -> list[Metric]:
    """The metrics without repeats; two different metrics may not share a name."""
    if isinstance(metrics, Metric) or not all(isinstance(m, Metric) for m in metrics):
        raise ParameterError("metrics must be a list of MeanMetric, RatioMetric or ProportionMetric")
    distinct = list(dict.fromkeys(metrics))
    if not distinct:
        raise ParameterError("metrics is empty; pass at least one metric")
    names = [m.name for m in distinct]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParameterError(f"metric names must be unique; {repeated} name different metrics")
    return distinct


def check_metric_columns(
    source: Source,
    metrics: Sequence[Metric],
    variant_col: str,
    unit_col: str | None,
    covariate_col: str | None,
) -> None:
    """Every column exists; value columns are numeric or boolean. Raised before any query runs."""
    source.require_column(variant_col, "variant_col")
    if unit_col is not None:
        source.require_column(unit_col, "unit_col")
    roles = [(f"metric {m.name!r}: {parameter}", column) for m in metrics for parameter, column in m.columns]
    if covariate_col is not None:
        roles.append(("covariate_col", covariate_col))
    for role, column in roles:
        source.require_column(column, role)
        kind: dt.DataType = source.schema[column]
        if not (kind.is_numeric() or kind.is_boolean()):
            raise ColumnError(f"{role}={column!r} has type {kind}; expected a numeric or boolean column")


def _resolve_control(variants: tuple[Any, ...], control: Any, variant_col: str) -> Any:
    seen = listed(variants)
    if len(variants) < 2:
        raise DataError(
            f"variant_col={variant_col!r} holds {len(variants)} variant(s) ({seen or 'none'}); "
            "comparing needs a control and at least one treatment"
        )
    if control is None:
        return find_control(variants)[0]
    if control not in variants:
        raise ParameterError(f"control={control!r} is not a variant in the data; variants are: {seen}")
    return control


def _check_finite(frame: pd.DataFrame, metrics: Sequence[Metric], covariate_col: str | None) -> None:
    """Reject NaN and infinite values by the metric and column that hold them."""
    roles = [(f"metric {m.name!r}: {parameter}", column) for m in metrics for parameter, column in m.columns]
    if covariate_col is not None:
        roles.append(("covariate_col", covariate_col))
    for role, column in roles:
        bad = frame[moments.nonfinite_column(column)]
        if bad.sum():
            arms = ", ".join(f"{int(count):,} in {variant!r}" for variant, count in bad.items() if count)
            raise DataError(
                f"{role}={column!r} holds NaN or infinite values (units: {arms}); a mean of them is not a "
                "number. Replace them with NULL to leave those units out, or with a finite value"
            )


def _arm_moments(frame: pd.DataFrame, index: int, metric: Metric, variant: Any) -> ArmMoments:
    """One variant's moments of metric ``index``, checked for the statistics' preconditions."""
    row = frame.loc[variant]
    fields = {
        f.name: float("nan") if pd.isna(row[column]) else float(row[column])
        for f in dataclasses.fields(ArmMoments)
        if (column := moments.moment_column(index, f.name)) in row.index
    }
    units = int(fields.pop("n") or 0)
    if units < 2:
        raise DataError(
            f"metric {metric.name!r}: variant {variant!r} has {units} unit(s) with values; at least 2 "
            "are needed to estimate a variance"
        )
    arm = ArmMoments(n=units, **fields)
    if not all(math.isfinite(value) for value in fields.values()):
        columns = ", ".join(f"{parameter}={column!r}" for parameter, column in metric.columns)
        raise DataError(
            f"metric {metric.name!r}: the moments of {columns} overflow float64 in variant {variant!r}; "
            "rescale the values (e.g. to thousands)"
        )
    if isinstance(metric, RatioMetric) and arm.denominator_mean == 0:
        raise DataError(
            f"metric {metric.name!r}: denominator_col={metric.denominator_col!r} sums to 0 in variant "
            f"{variant!r}; a ratio needs a nonzero denominator"
        )
    return arm
