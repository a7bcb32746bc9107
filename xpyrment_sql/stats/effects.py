"""Treatment effects from per-variant moments: Welch's t-test, delta-method ratios, CUPED, proportions.

Everything here works on a handful of numbers per variant (:class:`ArmMoments`), never on rows. For
one metric a unit ``i`` contributes a numerator ``Y_i``, a denominator ``D_i`` (``1`` for a mean) and,
with CUPED, a pre-period covariate ``X_i``. The metric's value in a variant is ``R = mean(Y) / mean(D)``.

* **Shift**: the numerator's moments are those of ``Z = Y - s D`` for a constant ``s`` common to the
  arms (``xpyrment_sql.queries.moments`` takes one row's value), so ``R = s + r`` with
  ``r = mean(Z) / mean(D)``
  computed from numbers of the order of the spread. Differences of ``R`` between arms are
  differences of ``r``, which keep their digits when ``R`` is ``1e9`` and the effect ``1e-2``.
* **Ratios** (delta method; Deng, Knoblich & Lu, 2018): the per-unit variance of ``R`` is

      Var_R = Var(Y - R D) / mean(D)^2 = (Var Z - 2 Cov(Z, D) r + Var D r^2) / mean(D)^2,

  which is ``Var Y`` for a mean (``D = 1``).
* **CUPED** (Deng, Xu, Kohavi & Walker, 2013): with ``theta = Cov(R, X) / Var X`` taken from control
  and treatment pooled, ``R' = R - theta (mean(X) - mean_pooled(X))`` and
  ``Var_R' = Var_R + theta^2 Var X - 2 theta Cov(R, X)``, where
  ``Cov(R, X) = (Cov(Z, X) - r Cov(D, X)) / mean(D)``. ``X`` may be centred on any constant too.
* **Welch's t-test** on ``R'_T - R'_C`` with ``se^2 = V_C/n_C + V_T/n_T`` and Welch-Satterthwaite
  degrees of freedom ``df = se^4 / ((V_C/n_C)^2/(n_C-1) + (V_T/n_T)^2/(n_T-1))`` (Welch, 1947).
* **Relative lift** ``L = (r_T - r_C) / R_C``; its CI by the delta method on ``log(R_T / R_C)``:
  variance ``V_C/(n_C R_C^2) + V_T/(n_T R_T^2)``, its own Welch-Satterthwaite ``df``, and
  ``CI = expm1(log1p(L) -/+ t_{1-alpha/2, df} se_log)``, i.e. ``(R_T/R_C) exp(-/+ ...) - 1`` without
  rounding ``R_T / R_C`` near 1. This is the formula of tea-tasting's ``Mean`` metric, so both agree
  on the same data.
* **Proportions**: the two-proportion z-test with the pooled null variance
  ``p(1-p)(1/n_C + 1/n_T)`` for the p-value, and the Katz log interval for the risk ratio
  (``Var log(p_T/p_C) = (1-p_T)/(n_T p_T) + (1-p_C)/(n_C p_C)``) for the relative lift (Katz et al.,
  1978). With a covariate there is no pooled null variance for the adjusted estimator, so the test is
  the Wald z-test on the CUPED-adjusted proportions with their sample variances.
"""

from __future__ import annotations

import dataclasses
import math

from xpyrment_sql.results.metrics import MetricResult
from xpyrment_sql.stats.distributions import normal_ppf, normal_sf, t_ppf, t_sf

_NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class ArmMoments:
    """Sufficient statistics of one metric in one variant, over units.

    The numerator's statistics are those of ``Z = Y - shift * D`` (``D = 1`` for a mean), with
    ``shift`` the same in every arm of a metric; ``shift = 0`` gives the plain moments of ``Y``.
    Variances and covariances are sample ones (divisor ``n - 1``), computed by the backend's
    variance and covariance aggregates, which do not lose precision on large means the way
    ``sum(x^2) - sum(x)^2 / n`` does.

    Attributes:
        n: Units with a value for every column the metric reads.
        numerator_mean: ``mean(Z)``.
        numerator_var: ``Var Z``.
        denominator_mean: ``mean(D)``; 1 for a mean or a proportion.
        denominator_var: ``Var D``.
        numerator_denominator_cov: ``Cov(Z, D)``.
        covariate_mean: ``mean(X)`` about a constant common to the arms; 0 without a covariate.
        covariate_var: ``Var X``.
        numerator_covariate_cov: ``Cov(Z, X)``.
        denominator_covariate_cov: ``Cov(D, X)``.
        shift: ``s``, the constant the numerator is centred on.
    """

    n: int
    numerator_mean: float
    numerator_var: float
    denominator_mean: float = 1.0
    denominator_var: float = 0.0
    numerator_denominator_cov: float = 0.0
    covariate_mean: float = 0.0
    covariate_var: float = 0.0
    numerator_covariate_cov: float = 0.0
    denominator_covariate_cov: float = 0.0
    shift: float = 0.0

    @property
    def centred_ratio(self) -> float:
        """``r = mean(Z) / mean(D) = R - shift``."""
        return self.numerator_mean / self.denominator_mean

    @property
    def ratio(self) -> float:
        """``R = mean(Y) / mean(D) = shift + r``: the metric's value in the variant."""
        return self.shift + self.centred_ratio

    @property
    def ratio_var(self) -> float:
        """Per-unit delta-method variance ``(Var Z - 2 Cov(Z,D) r + Var D r^2) / mean(D)^2``."""
        r = self.centred_ratio
        return (
            self.numerator_var - 2 * self.numerator_denominator_cov * r + self.denominator_var * r * r
        ) / (self.denominator_mean * self.denominator_mean)

    @property
    def ratio_covariate_cov(self) -> float:
        """Per-unit delta-method covariance ``Cov(R, X) = (Cov(Z,X) - r Cov(D,X)) / mean(D)``."""
        return (
            self.numerator_covariate_cov - self.centred_ratio * self.denominator_covariate_cov
        ) / self.denominator_mean


def pool(first: ArmMoments, second: ArmMoments) -> ArmMoments:
    """Moments of the two samples concatenated (Chan, Golub & LeVeque, 1979).

    ``mean = (n_1 m_1 + n_2 m_2) / n`` and
    ``Cov(A, B) = ((n_1-1) C_1 + (n_2-1) C_2 + (a_1-a_2)(b_1-b_2) n_1 n_2 / n) / (n - 1)``.
    """
    _check_same_shift(first, second)
    n = first.n + second.n
    weight = first.n * second.n / n
    gap = {
        name: getattr(first, f"{name}_mean") - getattr(second, f"{name}_mean")
        for name in ("numerator", "denominator", "covariate")
    }

    def mean(name: str) -> float:
        total: float = first.n * getattr(first, f"{name}_mean") + second.n * getattr(second, f"{name}_mean")
        return total / n

    def comoment(field: str, left: str, right: str) -> float:
        within = (first.n - 1) * getattr(first, field) + (second.n - 1) * getattr(second, field)
        joint: float = within + gap[left] * gap[right] * weight
        return joint / (n - 1)

    return ArmMoments(
        n=n,
        numerator_mean=mean("numerator"),
        numerator_var=comoment("numerator_var", "numerator", "numerator"),
        denominator_mean=mean("denominator"),
        denominator_var=comoment("denominator_var", "denominator", "denominator"),
        numerator_denominator_cov=comoment("numerator_denominator_cov", "numerator", "denominator"),
        covariate_mean=mean("covariate"),
        covariate_var=comoment("covariate_var", "covariate", "covariate"),
        numerator_covariate_cov=comoment("numerator_covariate_cov", "numerator", "covariate"),
        denominator_covariate_cov=comoment("denominator_covariate_cov", "denominator", "covariate"),
        shift=first.shift,
    )


def _check_same_shift(first: ArmMoments, second: ArmMoments) -> None:
    if first.shift != second.shift:
        raise ValueError(f"arms centred on different shifts ({first.shift!r}, {second.shift!r})")


@dataclasses.dataclass(frozen=True)
class _Arm:
    """A variant's (possibly CUPED-adjusted) value ``shift + centred``, per-unit variance and units."""

    centred: float
    var: float
    n: int
    shift: float = 0.0

    @property
    def value(self) -> float:
        return self.shift + self.centred


def compare(
    metric_name: str,
    control_name: object,
    treatment_name: object,
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    alpha: float = 0.05,
    proportion: bool = False,
    use_covariate: bool = False,
) -> MetricResult:
    """Treatment against control for one metric: lifts, relative-lift CI and p-value.

    Args:
        metric_name: Name reported in the result.
        control_name: Control variant.
        treatment_name: Treatment variant.
        control: Control moments (at least 2 units, nonzero denominator mean).
        treatment: Treatment moments (same conditions).
        alpha: Two-sided level: the CIs cover ``1 - alpha``.
        proportion: The numerator is a 0/1 indicator: z-test instead of Welch's t-test.
        use_covariate: Apply CUPED with the covariate moments.

    Returns:
        The comparison; ``p_value`` and the CIs are NaN when both arms have zero variance, and the
        relative CI is NaN unless ``R_T / R_C > 0`` (its logarithm must exist).
    """
    _check_same_shift(control, treatment)
    theta, reduction = 0.0, None
    if use_covariate:
        both = pool(control, treatment)
        theta = both.ratio_covariate_cov / both.covariate_var if both.covariate_var > 0 else 0.0
        arms = [_adjusted(m, theta, both.covariate_mean) for m in (control, treatment)]
        raw = _standard_error(*(_Arm(m.centred_ratio, m.ratio_var, m.n) for m in (control, treatment)))
        adjusted = _standard_error(*arms)
        reduction = 1 - (adjusted / raw) ** 2 if raw > 0 else 0.0
    elif proportion:
        arms = [_Arm(m.ratio, m.ratio * (1 - m.ratio), m.n) for m in (control, treatment)]
    else:
        arms = [_Arm(m.centred_ratio, m.ratio_var, m.n, m.shift) for m in (control, treatment)]
    c, t = arms
    se = _standard_error(c, t)
    df = math.inf if proportion else _welch_df(c, t)
    diff = t.centred - c.centred
    lift = diff / c.value if c.value != 0 else _NAN
    pooled_test = proportion and not use_covariate
    statistic = _pooled_z(c, t) if pooled_test else (diff / se if se > 0 else _NAN)
    p_value = 2 * (normal_sf(abs(statistic)) if proportion else t_sf(abs(statistic), df))
    half = _quantile(1 - alpha / 2, df) * se
    rel_lower, rel_upper = _relative_interval(c, t, lift, alpha, proportion)
    return MetricResult(
        metric_name=metric_name,
        control_value=float(c.value),
        treatment_value=float(t.value),
        absolute_lift=float(diff),
        relative_lift=float(lift),
        relative_ci_lower=rel_lower,
        relative_ci_upper=rel_upper,
        p_value=float(p_value),
        n_control=int(c.n),
        n_treatment=int(t.n),
        alpha=float(alpha),
        control=control_name,
        treatment=treatment_name,
        absolute_ci_lower=float(diff - half) if se > 0 else _NAN,
        absolute_ci_upper=float(diff + half) if se > 0 else _NAN,
        statistic=float(statistic),
        test="z" if proportion else "welch_t",
        cuped_theta=float(theta) if use_covariate else None,
        variance_reduction=None if reduction is None else float(reduction),
    )


def _adjusted(arm: ArmMoments, theta: float, pooled_covariate_mean: float) -> _Arm:
    """CUPED: ``R' = R - theta (mean X - pooled mean X)``, ``V' = Var R + theta^2 Var X - 2 theta Cov``."""
    centred = arm.centred_ratio - theta * (arm.covariate_mean - pooled_covariate_mean)
    var = arm.ratio_var + theta * theta * arm.covariate_var - 2 * theta * arm.ratio_covariate_cov
    return _Arm(centred, max(var, 0.0), arm.n, arm.shift)


def _standard_error(control: _Arm, treatment: _Arm) -> float:
    """``se = sqrt(V_C / n_C + V_T / n_T)``."""
    return math.sqrt(control.var / control.n + treatment.var / treatment.n)


def _welch_df(control: _Arm, treatment: _Arm) -> float:
    """Welch-Satterthwaite ``(a + b)^2 / (a^2/(n_C-1) + b^2/(n_T-1))``, ``a = V_C/n_C``, ``b = V_T/n_T``."""
    a, b = control.var / control.n, treatment.var / treatment.n
    denominator = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else _NAN


def _pooled_z(control: _Arm, treatment: _Arm) -> float:
    """``z = (p_T - p_C) / sqrt(p (1-p) (1/n_C + 1/n_T))`` with ``p`` the pooled proportion."""
    pooled = (control.n * control.value + treatment.n * treatment.value) / (control.n + treatment.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    return (treatment.value - control.value) / se if se > 0 else _NAN


def _quantile(q: float, df: float) -> float:
    """``q``-quantile of Student's t with ``df`` degrees of freedom (the normal when ``df`` is infinite)."""
    return float(normal_ppf(q) if math.isinf(df) else t_ppf(q, df))


def _relative_interval(
    control: _Arm, treatment: _Arm, lift: float, alpha: float, proportion: bool
) -> tuple[float, float]:
    """``expm1(log1p(lift) -/+ q se_log)`` with ``se_log^2 = V_C/(n_C R_C^2) + V_T/(n_T R_T^2)``.

    The ``df`` of ``q`` is Welch-Satterthwaite's on the log-scale terms (normal for proportions).
    """
    if control.value == 0 or not lift > -1:
        return _NAN, _NAN
    log_control = _Arm(0.0, control.var / control.value**2, control.n)
    log_treatment = _Arm(0.0, treatment.var / treatment.value**2, treatment.n)
    se_log = _standard_error(log_control, log_treatment)
    if se_log == 0:
        return _NAN, _NAN
    df = math.inf if proportion else _welch_df(log_control, log_treatment)
    half = _quantile(1 - alpha / 2, df) * se_log
    log_ratio = math.log1p(lift)
    return float(math.expm1(log_ratio - half)), float(math.expm1(log_ratio + half))
