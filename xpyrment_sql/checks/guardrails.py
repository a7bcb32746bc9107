"""Guardrails: metrics that must not move beyond a tolerated relative change in a harmful direction.

A :class:`GuardrailMetric` wraps a metric from :mod:`xpyrment_sql.checks.metrics` and judges its calculation
result, on the point estimate (the seed's rule) or as a non-inferiority test on the relative-lift CI.
:func:`check_guardrails` computes every guarded metric from one grouped query and judges every
treatment arm.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from xpyrment_sql.checks.metrics import Metric, calculate_metrics
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results.metrics import GuardrailReport, GuardrailResult, MetricsReport
from xpyrment_sql.source import Source

DIRECTIONS = ("both", "increase", "decrease")
METHODS = ("point", "ci")


@dataclasses.dataclass(frozen=True)
class GuardrailMetric:
    """A metric that must not move beyond ``max_allowed_change`` in a harmful direction.

    Let ``L = R_T / R_C - 1`` be the relative lift, ``[lo, hi]`` its CI and ``m`` the margin; the
    harmful region is ``L > m`` (``direction="increase"``), ``L < -m`` (``"decrease"``) or either
    (``"both"``).

    * ``method="point"`` (the seed's rule): breach when ``L`` lies in the harmful region, whatever
      its significance; with ``direction="both"`` that is ``|L| > m``.
    * ``method="ci"`` (non-inferiority): breach when the whole CI lies in the harmful region (e.g.
      ``lo > m``); ok when it lies wholly within the tolerated range (``hi <= m``); inconclusive when
      it straddles the margin. With the ``1 - alpha`` two-sided CI this is a one-sided test at
      ``alpha / 2``.

    Args:
        metric: The metric to guard (mean, ratio or proportion).
        max_allowed_change: Margin ``m`` as a fraction (0.01 = 1%).
        direction: Which changes count as harm.
        method: ``"point"`` or ``"ci"``.
        shutoff: A breach of this guardrail asks for the experiment to be shut off.

    References:
        Kohavi, Tang & Xu (2020), *Trustworthy Online Controlled Experiments*, ch. 21 (guardrail
        metrics); Wellek (2010), *Testing Statistical Hypotheses of Equivalence and Noninferiority*.

    Examples:
        >>> from xpyrment_sql.checks.metrics import MeanMetric
        >>> latency = MeanMetric("Page Latency", value_col="load_time")
        >>> guardrail = GuardrailMetric(latency, max_allowed_change=0.02)
        >>> guardrail.check_breach({"metric_name": "Page Latency", "relative_lift": 0.035})
        True
    """

    metric: Metric
    max_allowed_change: float = 0.01
    direction: str = "both"
    method: str = "point"
    shutoff: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.metric, Metric):
            raise ParameterError(
                f"metric={self.metric!r} must be a MeanMetric, RatioMetric or ProportionMetric"
            )
        margin = self.max_allowed_change
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
            raise ParameterError(f"max_allowed_change={margin!r} must be a finite number >= 0")
        if margin < 0:
            raise ParameterError(f"max_allowed_change={margin!r} must be >= 0 (a fraction, 0.01 = 1%)")
        if self.direction not in DIRECTIONS:
            raise ParameterError(f"direction={self.direction!r} must be one of {DIRECTIONS}")
        if self.method not in METHODS:
            raise ParameterError(f"method={self.method!r} must be one of {METHODS}")
        if not isinstance(self.shutoff, bool):
            raise ParameterError(f"shutoff={self.shutoff!r} must be True or False")

    def check_breach(self, calculation_result: Mapping[str, Any]) -> bool:
        """True when the result breaches the guardrail (:meth:`evaluate` says ``"breach"``).

        Args:
            calculation_result: A :class:`MetricResult` or a dict with ``relative_lift`` (and the CI
                bounds for ``method="ci"``), or a :class:`MetricsReport`: then True when any
                treatment arm breaches.
        """
        if isinstance(calculation_result, MetricsReport):
            found = [r for r in calculation_result.results if r.metric_name == self.metric.name]
            if not found:
                raise ParameterError(f"the report holds no result for metric {self.metric.name!r}")
            return any(self.evaluate(r).breached for r in found)
        return self.evaluate(calculation_result).breached

    def evaluate(self, calculation_result: Mapping[str, Any]) -> GuardrailResult:
        """``ok``, ``breach`` or ``inconclusive`` for one result, with the numbers behind it."""
        lift = _number(calculation_result, "relative_lift", self.method)
        needs_ci = self.method == "ci"
        lower = _number(calculation_result, "relative_ci_lower", self.method, needs_ci)
        upper = _number(calculation_result, "relative_ci_upper", self.method, needs_ci)
        margin = float(self.max_allowed_change)
        ceiling = margin if self.direction in ("both", "increase") else math.inf
        floor = -margin if self.direction in ("both", "decrease") else -math.inf
        low, high = (lower, upper) if needs_ci else (lift, lift)
        if math.isnan(low) or math.isnan(high):
            status = "inconclusive"
        elif low > ceiling or high < floor:
            status = "breach"
        elif low >= floor and high <= ceiling:
            status = "ok"
        else:
            status = "inconclusive"
        name = calculation_result.get("metric_name", self.metric.name)
        treatment = calculation_result.get("treatment")
        return GuardrailResult(
            metric_name=name,
            treatment=treatment,
            status=status,
            breached=status == "breach",
            relative_lift=lift,
            relative_ci_lower=lower,
            relative_ci_upper=upper,
            max_allowed_change=margin,
            direction=self.direction,
            method=self.method,
            shutoff=self.shutoff,
            message=self._message(name, treatment, status, lift, lower, upper),
        )

    def _message(
        self, name: str, treatment: Any, status: str, lift: float, lower: float, upper: float
    ) -> str:
        arm = f" in {treatment}" if treatment is not None else ""
        interval = f", CI [{lower:+.2%}, {upper:+.2%}]" if self.method == "ci" else ""
        shown = f"relative lift {lift:+.2%}{interval}"
        tolerated = {"both": "+/-", "increase": "+", "decrease": "-"}[self.direction]
        return (
            f"Guardrail {name!r}{arm}: {status} ({shown}; tolerated change {tolerated}"
            f"{self.max_allowed_change:.2%}, method={self.method})."
        )


def check_guardrails(
    source: Source,
    guardrails: Sequence[GuardrailMetric],
    variant_col: str,
    control: Any = None,
    unit_col: str | None = None,
    *,
    covariate_col: str | None = None,
    alpha: float = 0.05,
    until: pd.Timestamp | None = None,
) -> GuardrailReport:
    """Every guardrail on every treatment arm, from one grouped query of the guarded metrics.

    Arguments are those of :func:`calculate_metrics`. ``shutoff_required`` is True when a guardrail
    built with ``shutoff=True`` is breached; other breaches only report.
    """
    guardrails = check_guardrail_list(guardrails)
    report = calculate_metrics(
        source,
        [g.metric for g in guardrails],
        variant_col,
        control,
        unit_col,
        covariate_col,
        alpha=alpha,
        until=until,
    )
    return judge_guardrails(guardrails, report)


def judge_guardrails(guardrails: Sequence[GuardrailMetric], report: MetricsReport) -> GuardrailReport:
    """Every guardrail on every treatment arm of ``report`` (which holds every guarded metric)."""
    results = tuple(
        g.evaluate(report.get(g.metric.name, treatment))
        for g in guardrails
        for treatment in report.treatments
    )
    breaches = tuple(r for r in results if r.breached)
    return GuardrailReport(results, breaches, any(r.shutoff for r in breaches), report)


def check_guardrail_list(guardrails: Sequence[GuardrailMetric]) -> tuple[GuardrailMetric, ...]:
    """Return ``guardrails`` as a tuple if it is a non-empty list of :class:`GuardrailMetric`."""
    if isinstance(guardrails, GuardrailMetric) or not all(isinstance(g, GuardrailMetric) for g in guardrails):
        raise ParameterError("guardrails must be a list of GuardrailMetric objects")
    if not guardrails:
        raise ParameterError("guardrails is empty; pass at least one GuardrailMetric")
    return tuple(guardrails)


def _number(result: Mapping[str, Any], key: str, method: str, required: bool = True) -> float:
    """``result[key]`` as a float (NaN for None); a missing required key names what is expected."""
    if key not in result:
        if not required:
            return math.nan
        raise ParameterError(
            f"calculation_result has no {key!r}; method={method!r} needs it (use metric.calculate())"
        )
    value = result[key]
    return math.nan if value is None else float(value)
