"""Result records of metric calculations and guardrail checks.

Like every record in :mod:`xpyrment_sql.results`, they are frozen dataclasses that also read like the
seed's dictionaries: ``res.relative_lift`` and ``res["relative_lift"]`` both work, and
``res.to_dict()`` gives plain JSON-able values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from xpyrment_sql.results.base import Result


@dataclasses.dataclass(frozen=True)
class MetricResult(Result):
    """One metric, one treatment arm against control.

    Attributes:
        metric_name: The metric's name.
        control_value: The metric in control (CUPED-adjusted when a covariate was used).
        treatment_value: The metric in the treatment arm (adjusted likewise).
        absolute_lift: ``treatment_value - control_value``.
        relative_lift: ``treatment_value / control_value - 1`` (NaN when control is 0).
        relative_ci_lower: Lower end of the ``1 - alpha`` CI of the relative lift.
        relative_ci_upper: Upper end of that CI.
        p_value: Two-sided p-value of no difference.
        n_control: Units in control with a value.
        n_treatment: Units in the treatment arm with a value.
        alpha: One minus the CIs' coverage.
        control: Name of the control variant.
        treatment: Name of the treatment variant.
        absolute_ci_lower: Lower end of the ``1 - alpha`` CI of the absolute lift.
        absolute_ci_upper: Upper end of that CI.
        statistic: The test statistic (t or z).
        test: ``"welch_t"`` (means and ratios) or ``"z"`` (proportions).
        cuped_theta: CUPED coefficient, or ``None`` without a covariate.
        variance_reduction: With a covariate, ``1 - Var(adjusted difference) / Var(raw difference)``.
    """

    metric_name: str
    control_value: float
    treatment_value: float
    absolute_lift: float
    relative_lift: float
    relative_ci_lower: float
    relative_ci_upper: float
    p_value: float
    n_control: int
    n_treatment: int
    alpha: float
    control: Any = None
    treatment: Any = None
    absolute_ci_lower: float = float("nan")
    absolute_ci_upper: float = float("nan")
    statistic: float = float("nan")
    test: str = "welch_t"
    cuped_theta: float | None = None
    variance_reduction: float | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class MetricsReport(Result):
    """Every metric against control for every treatment arm, from one grouped query.

    Attributes:
        results: One record per (metric, treatment arm), metrics in the order given, arms sorted.
        control: The control variant.
        treatments: The treatment variants, sorted.
        variant_col: Column the variants come from.
        unit_col: Column rows were summed over before the statistics, or ``None`` (rows are units).
        covariate_col: CUPED covariate column, or ``None``.
    """

    results: tuple[MetricResult, ...]
    control: Any
    treatments: tuple[Any, ...]
    variant_col: str
    unit_col: str | None = None
    covariate_col: str | None = None

    def get(self, metric_name: str, treatment: Any = None) -> MetricResult:
        """The result of ``metric_name`` for ``treatment`` (default: the only treatment arm).

        Raises:
            KeyError: no such metric or arm, or ``treatment`` omitted with several arms.
        """
        found = [r for r in self.results if r.metric_name == metric_name]
        if treatment is not None:
            found = [r for r in found if r.treatment == treatment]
        if len(found) != 1:
            raise KeyError(
                f"{len(found)} results match metric {metric_name!r} and treatment {treatment!r}; "
                f"metrics are {sorted({r.metric_name for r in self.results})}, arms {list(self.treatments)}"
            )
        return found[0]

    def to_frame(self) -> pd.DataFrame:
        """One row per (metric, treatment arm), one column per result field."""
        return pd.DataFrame([dict(r) for r in self.results])


@dataclasses.dataclass(frozen=True)
class GuardrailResult(Result):
    """One guardrail checked on one treatment arm.

    Attributes:
        metric_name: The guarded metric.
        treatment: The treatment arm.
        status: ``"ok"``, ``"breach"`` or ``"inconclusive"`` (the CI straddles the margin, or the
            numbers are undefined, e.g. a control value of 0).
        breached: ``status == "breach"``.
        relative_lift: The relative lift the decision used.
        relative_ci_lower: Lower end of its CI.
        relative_ci_upper: Upper end of its CI.
        max_allowed_change: The margin, a fraction (0.01 = 1%).
        direction: ``"both"``, ``"increase"`` or ``"decrease"``: which changes count as harm.
        method: ``"point"`` (the relative lift alone) or ``"ci"`` (the whole CI beyond the margin).
        shutoff: Whether a breach of this guardrail asks for the experiment to be shut off.
        message: A sentence saying what was found.
    """

    metric_name: str
    treatment: Any
    status: str
    breached: bool
    relative_lift: float
    relative_ci_lower: float
    relative_ci_upper: float
    max_allowed_change: float
    direction: str
    method: str
    shutoff: bool
    message: str


@dataclasses.dataclass(frozen=True, eq=False)
class GuardrailReport(Result):
    """Every guardrail on every treatment arm, with the metrics they were computed from.

    Attributes:
        results: One record per (guardrail, treatment arm), guardrails in the order given.
        breaches: The records whose status is ``"breach"``.
        shutoff_required: True when a guardrail built with ``shutoff=True`` was breached.
        metrics: The metric calculations behind the decisions.
    """

    results: tuple[GuardrailResult, ...]
    breaches: tuple[GuardrailResult, ...]
    shutoff_required: bool
    metrics: MetricsReport
