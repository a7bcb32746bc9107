"""Effect statistics from per-variant moments, against hand calculations, scipy and tea-tasting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tea_tasting as tt
from scipy import stats

from xpyrment_sql.stats.effects import ArmMoments, compare, pool


def moments_of(y, d=None, x=None, shift: float = 0.0) -> ArmMoments:
    """Sample moments of raw per-unit arrays, computed with numpy (the reference for the backend's);
    the numerator is centred, ``y - shift * d``."""
    y = np.asarray(y, dtype=float)
    d = np.ones_like(y) if d is None else np.asarray(d, dtype=float)
    x = np.zeros_like(y) if x is None else np.asarray(x, dtype=float)
    y = y - shift * d
    c = np.cov(np.vstack([y, d, x]), ddof=1)
    return ArmMoments(
        shift=shift,
        n=len(y),
        numerator_mean=y.mean(),
        numerator_var=c[0, 0],
        denominator_mean=d.mean(),
        denominator_var=c[1, 1],
        numerator_denominator_cov=c[0, 1],
        covariate_mean=x.mean(),
        covariate_var=c[2, 2],
        numerator_covariate_cov=c[0, 2],
        denominator_covariate_cov=c[1, 2],
    )


def two_arms(seed: int, n_control: int = 300, n_treatment: int = 260) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_control + n_treatment
    x = rng.gamma(2.0, 5.0, n)
    arm = np.array(["control"] * n_control + ["treatment"] * n_treatment)
    lift = np.where(arm == "treatment", 1.06, 1.0)
    sessions = rng.integers(1, 6, n)
    return pd.DataFrame(
        {
            "variant": arm,
            "x": x,
            "y": (0.8 * x + rng.normal(0, 3 + (arm == "treatment") * 2, n) + 10) * lift,
            "orders": rng.poisson(sessions * 0.4 * lift),
            "sessions": sessions,
            "bought": (rng.random(n) < np.where(arm == "treatment", 0.25, 0.2)).astype(float),
        }
    )


def compare_frame(frame, numerator, denominator=None, covariate=None, **options):
    arms = {
        name: moments_of(
            part[numerator],
            None if denominator is None else part[denominator],
            None if covariate is None else part[covariate],
        )
        for name, part in frame.groupby("variant")
    }
    return compare(
        "m",
        "control",
        "treatment",
        arms["control"],
        arms["treatment"],
        use_covariate=covariate is not None,
        **options,
    )


def test_welch_by_hand():
    # means 2 and 4, variances 1 and 4, n = 3 each: se^2 = 1/3 + 4/3 = 5/3,
    # df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 50/17. Log scale: V/m^2 = 1/4 in both arms,
    # se_log^2 = 1/12 + 1/12 = 1/6, df_log = (1/6)^2 / (2 * (1/12)^2 / 2) = 4.
    result = compare("m", "c", "t", moments_of([1, 2, 3]), moments_of([2, 4, 6]))
    t_stat = 2 / math.sqrt(5 / 3)
    assert result.statistic == pytest.approx(t_stat, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.t.sf(t_stat, 50 / 17), rel=1e-12)
    half = stats.t.ppf(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert (result.absolute_ci_lower, result.absolute_ci_upper) == pytest.approx((2 - half, 2 + half))
    assert (result.control_value, result.treatment_value) == (2.0, 4.0)
    assert (result.absolute_lift, result.relative_lift) == (2.0, 1.0)
    log_half = stats.t.ppf(0.975, 4) * math.sqrt(1 / 6)
    assert result.relative_ci_lower == pytest.approx(2 * math.exp(-log_half) - 1, rel=1e-12)
    assert result.relative_ci_upper == pytest.approx(2 * math.exp(log_half) - 1, rel=1e-12)
    assert (result.n_control, result.n_treatment, result.test) == (3, 3, "welch_t")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_p_value_matches_scipy(seed):
    frame = two_arms(seed, 40 + seed * 17, 25)
    result = compare_frame(frame, "y")
    control, treatment = (frame.loc[frame.variant == v, "y"] for v in ("control", "treatment"))
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    interval = reference.confidence_interval(0.95)
    assert result.absolute_ci_lower == pytest.approx(interval.low, rel=1e-10)
    assert result.absolute_ci_upper == pytest.approx(interval.high, rel=1e-10)


@pytest.mark.parametrize(
    ("columns", "metric", "options"),
    [
        (("y", None, None), tt.Mean("y"), {}),
        (("orders", "sessions", None), tt.RatioOfMeans("orders", "sessions"), {}),
        (("y", None, "x"), tt.Mean("y", covariate="x"), {}),
        (("orders", "sessions", "x"), tt.RatioOfMeans("orders", "sessions", "x"), {}),
        (("y", None, None), tt.Mean("y", confidence_level=0.99), {"alpha": 0.01}),
        (("bought", None, "x"), tt.Mean("bought", covariate="x", use_t=False), {"proportion": True}),
    ],
)
def test_agrees_with_tea_tasting(columns, metric, options):
    frame = two_arms(7)
    result = compare_frame(frame, *columns, **options)
    expected = tt.Experiment(m=metric).analyze(frame, control="control")["m"]
    assert result.control_value == pytest.approx(expected.control, rel=1e-9)
    assert result.treatment_value == pytest.approx(expected.treatment, rel=1e-9)
    assert result.relative_lift == pytest.approx(expected.rel_effect_size, rel=1e-9)
    assert result.relative_ci_lower == pytest.approx(expected.rel_effect_size_ci_lower, rel=1e-9)
    assert result.relative_ci_upper == pytest.approx(expected.rel_effect_size_ci_upper, rel=1e-9)
    assert result.absolute_ci_lower == pytest.approx(expected.effect_size_ci_lower, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_ratio_variance_is_the_variance_of_linearised_units():
    # Var_R = Var((Y - R D) / mean(D)) exactly: the delta method's linearisation, computed directly.
    y, d = np.array([3.0, 0.0, 5.0, 2.0, 7.0]), np.array([2.0, 1.0, 4.0, 1.0, 3.0])
    arm = moments_of(y, d)
    ratio = y.sum() / d.sum()
    assert arm.ratio == pytest.approx(17 / 11, rel=1e-15)
    assert arm.ratio_var == pytest.approx(np.var((y - ratio * d) / d.mean(), ddof=1), rel=1e-12)


def test_pool_equals_moments_of_the_concatenation():
    rng = np.random.default_rng(5)
    first = [rng.normal(3, 1, 40), rng.integers(1, 4, 40), rng.normal(0, 2, 40)]
    second = [rng.normal(5, 2, 25), rng.integers(1, 6, 25), rng.normal(1, 1, 25)]
    pooled = pool(moments_of(*first), moments_of(*second))
    expected = moments_of(*(np.concatenate(pair) for pair in zip(first, second, strict=True)))
    for name in ArmMoments.__dataclass_fields__:
        assert getattr(pooled, name) == pytest.approx(getattr(expected, name), rel=1e-12), name


def test_cuped_is_welch_on_adjusted_units():
    frame = two_arms(11)
    result = compare_frame(frame, "y", covariate="x")
    theta = np.cov(frame.y, frame.x, ddof=1)[0, 1] / np.var(frame.x, ddof=1)
    adjusted = frame.y - theta * (frame.x - frame.x.mean())
    control, treatment = (adjusted[frame.variant == v] for v in ("control", "treatment"))
    assert result.cuped_theta == pytest.approx(theta, rel=1e-12)
    assert result.p_value == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue)
    raw = [frame.y[frame.variant == v] for v in ("control", "treatment")]
    raw_var = sum(np.var(a, ddof=1) / len(a) for a in raw)
    adjusted_var = np.var(control, ddof=1) / len(control) + np.var(treatment, ddof=1) / len(treatment)
    assert result.variance_reduction == pytest.approx(1 - adjusted_var / raw_var, rel=1e-10)
    assert result.variance_reduction > 0.5, "x explains most of y's variance"


def test_proportion_z_test_and_katz_interval():
    # 30 of 200 against 45 of 180. The pooled z-test's z^2 is Pearson's chi-square on the 2x2 table.
    control = moments_of(np.r_[np.ones(30), np.zeros(170)])
    treatment = moments_of(np.r_[np.ones(45), np.zeros(135)])
    result = compare("p", "c", "t", control, treatment, proportion=True)
    chi2, p_value, _, _ = stats.chi2_contingency([[30, 170], [45, 135]], correction=False)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-10)
    p_c, p_t = 30 / 200, 45 / 180
    se_log = math.sqrt((1 - p_t) / (180 * p_t) + (1 - p_c) / (200 * p_c))
    z = stats.norm.ppf(0.975)
    assert result.relative_ci_lower == pytest.approx(p_t / p_c * math.exp(-z * se_log) - 1, rel=1e-12)
    assert result.relative_ci_upper == pytest.approx(p_t / p_c * math.exp(z * se_log) - 1, rel=1e-12)
    se = math.sqrt(p_c * (1 - p_c) / 200 + p_t * (1 - p_t) / 180)
    assert result.absolute_ci_upper == pytest.approx(p_t - p_c + z * se, rel=1e-12)
    assert result.test == "z"


def test_undefined_quantities_are_nan():
    constant = compare("m", "c", "t", moments_of([2.0, 2.0, 2.0]), moments_of([3.0, 3.0]))
    assert math.isnan(constant.p_value)
    assert math.isnan(constant.relative_ci_lower)
    assert constant.relative_lift == pytest.approx(0.5)
    sign_change = compare("m", "c", "t", moments_of([-1.0, -2.0, -3.0]), moments_of([1.0, 2.0]))
    assert math.isnan(sign_change.relative_ci_upper), "log(R_T / R_C) does not exist for a negative ratio"
    assert not math.isnan(sign_change.p_value)
    zero_control = compare("m", "c", "t", moments_of([-1.0, 1.0]), moments_of([1.0, 2.0]))
    assert math.isnan(zero_control.relative_lift)


@pytest.mark.parametrize("denominator", [None, "sessions"])
def test_an_offset_centred_away_leaves_the_test_as_it_is_without_the_offset(denominator):
    """``R + 1e9`` per unit of denominator, centred on ``1e9``: the same difference and p-value as ``R``."""
    frame = two_arms(12)
    d = np.ones(len(frame)) if denominator is None else frame[denominator].to_numpy(dtype=float)
    results = []
    for offset in (0.0, 1e9):
        y = frame.y.to_numpy() + offset * d
        arms = {
            name: moments_of(y[rows], d[rows], shift=offset)
            for name, rows in ((v, (frame.variant == v).to_numpy()) for v in ("control", "treatment"))
        }
        results.append(compare("m", "c", "t", arms["control"], arms["treatment"]))
    plain, offset = results
    assert offset.control_value - 1e9 == pytest.approx(plain.control_value, rel=1e-6)
    for field in ("absolute_lift", "p_value", "statistic", "absolute_ci_lower"):
        assert getattr(offset, field) == pytest.approx(getattr(plain, field), rel=1e-6), field
    assert offset.relative_lift == pytest.approx(plain.absolute_lift / offset.control_value, rel=1e-6)


def test_arms_centred_on_different_shifts_are_refused():
    with pytest.raises(ValueError, match="different shifts"):
        compare("m", "c", "t", moments_of([1.0, 2.0]), moments_of([1.0, 3.0], shift=1.0))
