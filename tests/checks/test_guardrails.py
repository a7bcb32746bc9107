"""Guardrails: the seed's point rule, directions, the non-inferiority CI rule, and shutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.metrics import MeanMetric, ProportionMetric, RatioMetric, open_metric_source
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results.metrics import MetricResult

LATENCY = MeanMetric("Page Latency", value_col="load_time")


def result(lift, lower=None, upper=None, treatment="treatment"):
    """A calculation result with a given relative lift and CI (control 100)."""
    return MetricResult(
        metric_name="Page Latency",
        control_value=100.0,
        treatment_value=100.0 * (1 + lift),
        absolute_lift=100.0 * lift,
        relative_lift=lift,
        relative_ci_lower=lift - 0.01 if lower is None else lower,
        relative_ci_upper=lift + 0.01 if upper is None else upper,
        p_value=0.5,
        n_control=1000,
        n_treatment=1000,
        alpha=0.05,
        treatment=treatment,
    )


def test_seed_example_and_rule():
    guardrail = GuardrailMetric(LATENCY, max_allowed_change=0.02)
    assert guardrail.check_breach({"metric_name": "Page Latency", "relative_lift": 0.035})
    assert guardrail.check_breach({"metric_name": "Page Latency", "relative_lift": -0.035})
    assert not guardrail.check_breach({"metric_name": "Page Latency", "relative_lift": 0.02})
    assert not guardrail.check_breach({"metric_name": "Page Latency", "relative_lift": -0.019})
    assert GuardrailMetric(LATENCY).max_allowed_change == 0.01


@pytest.mark.parametrize(
    ("direction", "lift", "breached"),
    [
        ("increase", 0.05, True),
        ("increase", -0.05, False),
        ("decrease", -0.05, True),
        ("decrease", 0.05, False),
        ("both", -0.05, True),
    ],
)
def test_direction_decides_which_change_is_harm(direction, lift, breached):
    guardrail = GuardrailMetric(LATENCY, 0.02, direction=direction)
    assert guardrail.check_breach(result(lift)) is breached
    assert guardrail.evaluate(result(lift)).status == ("breach" if breached else "ok")


@pytest.mark.parametrize(
    ("direction", "lower", "upper", "status"),
    [
        ("increase", 0.025, 0.06, "breach"),  # the whole CI above +2%
        ("increase", -0.01, 0.015, "ok"),  # the whole CI at or below +2%
        ("increase", 0.01, 0.06, "inconclusive"),  # straddles +2%
        ("increase", -0.20, -0.05, "ok"),  # a large decrease is no harm here
        ("decrease", -0.06, -0.025, "breach"),
        ("decrease", -0.03, 0.01, "inconclusive"),
        ("both", -0.06, -0.025, "breach"),
        ("both", -0.015, 0.015, "ok"),
        ("both", -0.03, 0.01, "inconclusive"),
    ],
)
def test_ci_method_is_a_non_inferiority_check(direction, lower, upper, status):
    guardrail = GuardrailMetric(LATENCY, 0.02, direction=direction, method="ci")
    evaluation = guardrail.evaluate(result((lower + upper) / 2, lower, upper))
    assert evaluation.status == status
    assert evaluation.breached is (status == "breach")
    assert (evaluation.relative_ci_lower, evaluation.relative_ci_upper) == (lower, upper)
    assert status in evaluation.message


def test_point_breach_can_be_ci_inconclusive():
    # +3% observed, CI [-1%, +7%]: the seed's rule fires, the non-inferiority rule cannot decide.
    observed = result(0.03, -0.01, 0.07)
    assert GuardrailMetric(LATENCY, 0.02).check_breach(observed)
    assert not GuardrailMetric(LATENCY, 0.02, method="ci").check_breach(observed)


def test_undefined_lift_is_inconclusive():
    evaluation = GuardrailMetric(LATENCY, 0.02).evaluate(result(float("nan")))
    assert evaluation.status == "inconclusive"
    assert not evaluation.breached


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_allowed_change": -0.1}, "max_allowed_change=-0.1 must be >= 0"),
        ({"max_allowed_change": float("inf")}, "max_allowed_change=inf must be a finite number"),
        ({"direction": "up"}, "direction='up' must be one of"),
        ({"method": "bayes"}, "method='bayes' must be one of"),
        ({"shutoff": "yes"}, "shutoff='yes' must be True or False"),
    ],
)
def test_bad_parameters_are_named(options, message):
    with pytest.raises(ParameterError, match=message):
        GuardrailMetric(LATENCY, **options)


def test_a_guardrail_needs_a_metric_and_ci_needs_the_ci():
    with pytest.raises(ParameterError, match="metric='load_time' must be a MeanMetric"):
        GuardrailMetric("load_time")
    with pytest.raises(ParameterError, match="no 'relative_ci_lower'; method='ci' needs it"):
        GuardrailMetric(LATENCY, method="ci").check_breach({"relative_lift": 0.5})


def experiment_log(latency_lift: float, units: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three arms; ``slow`` loads pages ``latency_lift`` slower, ``same`` changes nothing."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), 3)
    arm = np.array(["control", "same", "slow"])[unit % 3]
    factor = np.where(arm == "slow", 1 + latency_lift, 1.0)
    return pd.DataFrame(
        {
            "user": unit,
            "arm": arm,
            "load_time": rng.normal(200.0, 10.0, len(unit)) * factor,
            "requests": np.ones(len(unit)),
            "error": rng.random(len(unit)) < 0.01,
        }
    )


def test_check_guardrails_in_one_query_and_shutoff_only_when_asked(query_log):
    source = open_metric_source(experiment_log(0.10), "arm")
    query_log.clear()
    latency = RatioMetric("latency per request", "load_time", "requests")
    guardrails = [
        GuardrailMetric(latency, 0.02, direction="increase"),
        GuardrailMetric(latency, 0.05, direction="increase", method="ci", shutoff=True),
        GuardrailMetric(ProportionMetric("errors", "error"), 1.0, direction="increase"),
    ]
    report = check_guardrails(source, guardrails, "arm", unit_col="user")
    assert len(query_log) == 1
    assert [(r.metric_name, r.treatment, r.status) for r in report.results] == [
        ("latency per request", "same", "ok"),
        ("latency per request", "slow", "breach"),
        ("latency per request", "same", "ok"),
        ("latency per request", "slow", "breach"),
        ("errors", "same", "ok"),
        ("errors", "slow", "ok"),
    ]
    assert [r.shutoff for r in report.breaches] == [False, True]
    assert report.shutoff_required
    slow = report.metrics.get("latency per request", "slow")
    assert slow.relative_lift == pytest.approx(0.10, abs=0.01)
    assert guardrails[0].check_breach(report.metrics), "a report breaches when any arm does"

    report = check_guardrails(source, guardrails[:1], "arm", unit_col="user")
    assert len(report.breaches) == 1
    assert not report.shutoff_required, "a breach alone does not shut off"


def test_check_guardrails_validates_its_list():
    source = open_metric_source(experiment_log(0.0), "arm")
    with pytest.raises(ParameterError, match="list of GuardrailMetric"):
        check_guardrails(source, [LATENCY], "arm")
    with pytest.raises(ParameterError, match="guardrails is empty"):
        check_guardrails(source, [], "arm")


def test_a_guardrail_on_a_mean_near_1e9_judges_a_lift_of_3e_11():
    """Values ``1e9 + N(0, 1)``, treatment ``+0.03``: the lift and its CI keep six digits."""
    rng = np.random.default_rng(11)
    n = 20_000
    offset = 1e9
    noise = rng.normal(0.0, 1.0, 2 * n) + np.repeat([0.0, 0.03], n)
    log = pd.DataFrame({"arm": np.repeat(["control", "treatment"], n), "load_time": offset + noise})
    control, treatment = noise[:n], noise[n:]
    r_c, r_t = offset + control.mean(), offset + treatment.mean()
    lift = (treatment.mean() - control.mean()) / r_c
    v_c, v_t = np.var(control, ddof=1) / (n * r_c**2), np.var(treatment, ddof=1) / (n * r_t**2)
    df = (v_c + v_t) ** 2 / (v_c**2 / (n - 1) + v_t**2 / (n - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(v_c + v_t)
    lower, upper = np.expm1(np.log1p(lift) - half), np.expm1(np.log1p(lift) + half)
    assert lower > 0, "the CI excludes no change"

    source = open_metric_source(log, "arm")
    guardrails = [
        GuardrailMetric(LATENCY, max_allowed_change=1e-12, direction="increase", method="ci"),
        GuardrailMetric(LATENCY, max_allowed_change=1e-9, direction="increase", method="ci"),
    ]
    report = check_guardrails(source, guardrails, "arm")
    got = report.metrics.get("Page Latency", "treatment")
    assert got.relative_lift == pytest.approx(lift, rel=1e-6)
    assert (got.relative_ci_lower, got.relative_ci_upper) == pytest.approx((lower, upper), rel=1e-6)
    assert [r.status for r in report.results] == ["breach", "ok"]
