"""Metrics end to end on DuckDB: per-unit sums and moments in SQL, statistics checked independently."""

from __future__ import annotations

import json
import math

import ibis
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import tea_tasting as tt
from scipy import stats

from xpyrment_sql.checks.metrics import (
    MeanMetric,
    ProportionMetric,
    RatioMetric,
    calculate_metrics,
    open_metric_source,
)
from xpyrment_sql.errors import ColumnError, DataError, ParameterError
from xpyrment_sql.queries import moments
from xpyrment_sql.source import open_source


def event_log(units: int = 400, seed: int = 0, variants=("control", "treatment")) -> pd.DataFrame:
    """Several rows per unit; ``pre`` is the unit's pre-period value, repeated on each of its rows."""
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, units * 4)
    pre = rng.gamma(2.0, 5.0, units)
    arm = np.asarray(variants)[unit % len(variants)]
    return pd.DataFrame(
        {
            "unit_id": unit,
            "variant": arm,
            "revenue": 0.2 * pre[unit]
            + rng.exponential(2.0, len(unit)) * np.where(arm == variants[0], 1, 1.1),
            "sessions": rng.integers(1, 4, len(unit)),
            "clicked": rng.random(len(unit)) < 0.1,
            "pre": pre[unit],
            "ts": pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 86_400 * 4, len(unit)), "s"),
        }
    )


def per_unit(log: pd.DataFrame) -> pd.DataFrame:
    """The reference per-unit table, summed by pandas."""
    return log.groupby(["variant", "unit_id"], as_index=False).agg(
        revenue=("revenue", "sum"),
        sessions=("sessions", "sum"),
        clicked=("clicked", "any"),
        pre=("pre", "first"),
    )


def test_hand_computed_values_with_many_rows_per_unit():
    # Per-unit sums: control 1, 2, 3 and treatment 2, 4, 6 (see test_effects.test_welch_by_hand).
    log = pd.DataFrame(
        {
            "unit_id": [1, 1, 2, 3, 3, 3, 4, 5, 5, 6],
            "variant": ["control"] * 6 + ["treatment"] * 4,
            "value": [0.5, 0.5, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 6.0],
        }
    )
    result = MeanMetric("value", "value").calculate(log, unit_col="unit_id").get("value")
    assert (result.control_value, result.treatment_value, result.relative_lift) == (2.0, 4.0, 1.0)
    assert (result.n_control, result.n_treatment) == (3, 3)
    assert result.p_value == pytest.approx(2 * stats.t.sf(2 / math.sqrt(5 / 3), 50 / 17), rel=1e-12)
    rows = MeanMetric("value", "value").calculate(log).get("value")
    assert (rows.control_value, rows.n_control) == (1.0, 6), "without unit_col each row is a unit"


def test_one_grouped_query_for_all_metrics(query_log):
    log = event_log()
    source = open_metric_source(log)
    query_log.clear()
    metrics = [
        MeanMetric("revenue", "revenue"),
        RatioMetric("revenue per session", "revenue", "sessions"),
        ProportionMetric("clicked", "clicked"),
    ]
    report = calculate_metrics(source, metrics, "variant", unit_col="unit_id", covariate_col="pre")
    assert len(query_log) == 1
    assert query_log[0].count("GROUP BY") == 2, "per unit, then per variant"
    assert len(report.results) == 3
    assert all(r.variance_reduction > 0 for r in report.results)


OFFSET = 1e9


def offset_log(units: int = 20_000, seed: int = 3, rows_per_unit: int = 1) -> pd.DataFrame:
    """Values ``1e9 + N(0, 1)`` (treatment ``+0.03``); ``revenue`` is ``1e9`` (treatment ``+0.05``) per
    session, 1 to 3 ``sessions`` per row, plus the same noise."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(2 * units), rows_per_unit)
    arm = np.where(unit < units, "control", "treatment")
    sessions = rng.integers(1, 4, len(unit)).astype(float)
    noise = rng.normal(0.0, 1.0, len(unit)) + np.where(arm == "treatment", 0.03, 0.0)
    return pd.DataFrame(
        {
            "unit_id": unit,
            "variant": arm,
            "value": OFFSET + noise,
            "revenue": sessions * (OFFSET + np.where(arm == "treatment", 0.05, 0.0)) + noise,
            "sessions": sessions,
        }
    )


def welch_reference(control: np.ndarray, treatment: np.ndarray) -> float:
    """scipy's Welch test on values centred on the offset (exact for values near 1e9)."""
    return stats.ttest_ind(treatment - OFFSET, control - OFFSET, equal_var=False).pvalue


def delta_method_reference(units: pd.DataFrame) -> tuple[float, float]:
    """``(R_T - R_C, p)`` of ``sum(revenue) / sum(sessions)`` by the delta method, written out.

    Each arm's ``R = OFFSET + mean(Y - OFFSET D) / mean(D)`` and ``Var(R) = Var(Y - R D) / (n mean(D)^2)``,
    ``Y - R D`` computed as ``(Y - OFFSET D) - (R - OFFSET) D`` so that nothing cancels; Welch's df.
    """
    moments = []
    for arm in ("control", "treatment"):
        rows = units[units.variant == arm]
        centred = rows.revenue.to_numpy() - OFFSET * rows.sessions.to_numpy()
        sessions = rows.sessions.to_numpy()
        r = centred.mean() / sessions.mean()
        linearised = (centred - r * sessions) / sessions.mean()
        moments.append((r, np.var(linearised, ddof=1) / len(rows), len(rows)))
    (r_c, v_c, n_c), (r_t, v_t, n_t) = moments
    t = (r_t - r_c) / math.sqrt(v_c + v_t)
    df = (v_c + v_t) ** 2 / (v_c**2 / (n_c - 1) + v_t**2 / (n_t - 1))
    return r_t - r_c, 2 * stats.t.sf(abs(t), df)


def test_a_mean_near_1e9_agrees_with_scipy_to_six_digits():
    log = offset_log()
    result = MeanMetric("value", "value").calculate(log).get("value")
    control, treatment = (log.value[log.variant == arm].to_numpy() for arm in ("control", "treatment"))
    assert result.p_value == pytest.approx(welch_reference(control, treatment), rel=1e-6)
    difference = (treatment - OFFSET).mean() - (control - OFFSET).mean()
    assert result.absolute_lift == pytest.approx(difference, rel=1e-6)
    assert result.relative_lift == pytest.approx(difference / control.mean(), rel=1e-6)
    assert result.control_value == pytest.approx(control.mean(), rel=1e-15)
    per_unit = MeanMetric("value", "value").calculate(log, unit_col="unit_id").get("value")
    assert per_unit.p_value == pytest.approx(result.p_value, rel=1e-9)


def test_the_variance_of_a_large_mean_keeps_its_digits():
    """``sum(x^2) - n mean^2`` in float64 would put the variance of ``1e9 + N(0, 1)`` near 262, not 1."""
    log = offset_log(units=2000)
    source = open_metric_source(log)
    frame = source.execute(moments.variant_moments(source, "variant", [moments.MomentSpec("value")]))
    frame = frame.set_index(moments.VARIANT)
    for arm in ("control", "treatment"):
        expected = np.var(log.value[log.variant == arm].to_numpy() - OFFSET, ddof=1)
        assert frame.loc[arm, moments.moment_column(0, "numerator_var")] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("rows_per_unit", [1, 3])
def test_a_ratio_near_1e9_agrees_with_the_delta_method_to_six_digits(rows_per_unit):
    log = offset_log(units=10_000, rows_per_unit=rows_per_unit)
    metric = RatioMetric("revenue per session", "revenue", "sessions")
    result = metric.calculate(log, unit_col="unit_id").get("revenue per session")
    units = log.groupby(["variant", "unit_id"], as_index=False)[["revenue", "sessions"]].sum()
    difference, p_value = delta_method_reference(units)
    assert result.p_value == pytest.approx(p_value, rel=1e-6)
    assert result.absolute_lift == pytest.approx(difference, rel=1e-6)
    assert p_value < 0.05, "an effect the test must resolve"


def test_cuped_with_a_covariate_near_1e9_equals_cuped_with_it_near_0():
    """CUPED depends on the covariate only through its deviations, so an offset must change nothing."""
    log = event_log(units=2000, seed=4)
    near_zero = MeanMetric("revenue", "revenue").calculate(log, unit_col="unit_id", covariate_col="pre")
    shifted = log.assign(pre=log.pre + OFFSET)
    near_1e9 = MeanMetric("revenue", "revenue").calculate(shifted, unit_col="unit_id", covariate_col="pre")
    expected, got = near_zero.get("revenue"), near_1e9.get("revenue")
    assert got.p_value == pytest.approx(expected.p_value, rel=1e-6)
    assert got.absolute_lift == pytest.approx(expected.absolute_lift, rel=1e-6)
    assert got.variance_reduction == pytest.approx(expected.variance_reduction, rel=1e-6)


def nan_table(value: float) -> ibis.Table:
    """A DuckDB table (which keeps NaN, unlike pandas input) with one bad value in treatment."""
    log = event_log(units=60, seed=5).drop(columns="ts").assign(row=lambda frame: np.arange(len(frame)))
    bad = int(log.row[log.variant == "treatment"].iloc[0])
    con = ibis.duckdb.connect()
    con.create_table("log", log)
    con.raw_sql(f"UPDATE log SET revenue = '{value}'::DOUBLE WHERE row = {bad}")
    return con.table("log")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    ("metric", "role"),
    [
        (MeanMetric("m", "revenue"), "value_col"),
        (ProportionMetric("m", "revenue"), "value_col"),
        (RatioMetric("m", "sessions", "revenue"), "denominator_col"),
    ],
)
def test_nan_and_infinite_values_are_rejected_by_column(value, metric, role):
    with pytest.raises(DataError) as info:
        metric.calculate(nan_table(value), unit_col="unit_id")
    assert f"metric 'm': {role}='revenue' holds NaN or infinite values (units: 1 in 'treatment')" in str(
        info.value
    )


def test_nan_in_a_pandas_frame_is_a_missing_value():
    log = event_log(units=60, seed=5)
    log.loc[log.unit_id == 1, "revenue"] = np.nan
    result = MeanMetric("m", "revenue").calculate(log, unit_col="unit_id").get("m")
    units = per_unit(log[log.unit_id != 1])
    assert result.n_control + result.n_treatment == len(units)
    assert result.control_value == pytest.approx(units.revenue[units.variant == "control"].mean(), rel=1e-12)


def test_a_mean_near_1e9_and_nan_on_postgresql(postgres_server):
    log = offset_log(units=5000)
    con = ibis.connect(postgres_server.url())
    table = con.create_table("offset_metric", log, overwrite=True)
    try:
        result = MeanMetric("value", "value").calculate(table).get("value")
        control, treatment = (log.value[log.variant == arm].to_numpy() for arm in ("control", "treatment"))
        assert result.p_value == pytest.approx(welch_reference(control, treatment), rel=1e-6)
        ratio = RatioMetric("rps", "revenue", "sessions").calculate(table, unit_col="unit_id").get("rps")
        difference, p_value = delta_method_reference(log)
        assert ratio.p_value == pytest.approx(p_value, rel=1e-6)
        assert ratio.absolute_lift == pytest.approx(difference, rel=1e-6)
        con.raw_sql("UPDATE offset_metric SET value = 'NaN' WHERE unit_id = 7").close()
        with pytest.raises(DataError, match=r"value_col='value' holds NaN or infinite values \(units: 1 in"):
            MeanMetric("value", "value").calculate(table)
    finally:
        con.drop_table("offset_metric")
        con.disconnect()


def test_three_arms_each_against_control():
    log = event_log(variants=("b", "a_ctrl", "c"), seed=4)
    report = MeanMetric("revenue", "revenue").calculate(log, unit_col="unit_id")
    assert report.control == "a_ctrl"
    assert report.treatments == ("b", "c")
    units = per_unit(log)
    control = units.revenue[units.variant == "a_ctrl"]
    for arm in ("b", "c"):
        result = report.get("revenue", arm)
        treatment = units.revenue[units.variant == arm]
        assert result.p_value == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue)
        assert (result.n_control, result.n_treatment) == (len(control), len(treatment))
    chosen = MeanMetric("revenue", "revenue").calculate(log, unit_col="unit_id", control="c")
    assert chosen.treatments == ("a_ctrl", "b")


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (MeanMetric("m", "revenue"), tt.Mean("revenue", covariate="pre")),
        (RatioMetric("m", "revenue", "sessions"), tt.RatioOfMeans("revenue", "sessions", "pre")),
    ],
)
def test_cuped_agrees_with_tea_tasting_on_unit_sums(metric, reference):
    log = event_log(seed=5)
    result = metric.calculate(log, unit_col="unit_id", covariate_col="pre").get("m")
    expected = tt.Experiment(m=reference).analyze(per_unit(log), control="control")["m"]
    assert result.relative_lift == pytest.approx(expected.rel_effect_size, rel=1e-9)
    assert result.relative_ci_lower == pytest.approx(expected.rel_effect_size_ci_lower, rel=1e-9)
    assert result.relative_ci_upper == pytest.approx(expected.rel_effect_size_ci_upper, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    plain = metric.calculate(log, unit_col="unit_id").get("m")
    assert result.variance_reduction > 0.1
    widths = [r.relative_ci_upper - r.relative_ci_lower for r in (result, plain)]
    assert widths[0] < widths[1]


def test_proportions_of_units_with_a_positive_or_true_value():
    log = event_log(seed=6)
    units = per_unit(log)
    report = calculate_metrics(
        open_metric_source(log),
        [ProportionMetric("clicked", "clicked"), ProportionMetric("spent", "revenue")],
        "variant",
        unit_col="unit_id",
    )
    clicked = report.get("clicked")
    table = [
        [units.clicked[units.variant == v].sum(), (~units.clicked[units.variant == v]).sum()]
        for v in ("control", "treatment")
    ]
    assert clicked.treatment_value == table[1][0] / sum(table[1])
    assert (clicked.n_control, clicked.n_treatment) == (sum(table[0]), sum(table[1]))
    assert clicked.p_value == pytest.approx(stats.chi2_contingency(table, correction=False)[1], rel=1e-9)
    assert report.get("spent").control_value == 1.0, "every unit has revenue > 0"


@pytest.mark.parametrize("kind", ["polars", "arrow", "ibis", "parquet"])
def test_every_input_the_monitor_accepts(kind, tmp_path):
    log = event_log(units=60, seed=7).drop(columns="ts")
    if kind == "polars":
        data = pl.from_pandas(log)
    elif kind == "arrow":
        data = pa.Table.from_pandas(log)
    elif kind == "ibis":
        data = ibis.duckdb.connect().create_table("log", log)
    else:
        data = tmp_path / "log.parquet"
        log.to_parquet(data)
    metric = RatioMetric("rps", "revenue", "sessions")
    expected = metric.calculate(log, unit_col="unit_id").get("rps")
    result = metric.calculate(data, unit_col="unit_id").get("rps")
    assert result.p_value == pytest.approx(expected.p_value, rel=1e-12)
    assert result.relative_ci_lower == pytest.approx(expected.relative_ci_lower, rel=1e-12)
    assert (result.n_control, result.n_treatment) == (expected.n_control, expected.n_treatment)


def test_a_unit_with_many_rows_is_one_observation():
    log = event_log(units=80, seed=10)
    heavy = log[log.unit_id == log.unit_id.iloc[0]].iloc[[0] * 1000].assign(revenue=0.5)
    log = pd.concat([log, heavy], ignore_index=True)
    result = MeanMetric("revenue", "revenue").calculate(log, unit_col="unit_id").get("revenue")
    units = per_unit(log)
    control, treatment = (units.revenue[units.variant == v] for v in ("control", "treatment"))
    assert (result.n_control, result.n_treatment) == (len(control), len(treatment))
    assert result.control_value == pytest.approx(control.mean(), rel=1e-12)
    assert result.p_value == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue)


def test_until_ignores_later_rows_and_nulls_leave_a_metric():
    log = event_log(seed=8)
    log.loc[log.unit_id == 3, "revenue"] = np.nan
    cutoff = pd.Timestamp("2026-01-07", tz="UTC")
    source = open_source(log, time_col="ts")
    report = calculate_metrics(source, [MeanMetric("revenue", "revenue")], "variant", until=cutoff)
    kept = log[(log.ts < cutoff.tz_localize(None)) & log.revenue.notna()]
    result = report.get("revenue")
    assert result.n_control + result.n_treatment == len(kept)
    assert result.control_value == pytest.approx(kept.revenue[kept.variant == "control"].mean(), rel=1e-12)


def test_results_are_frozen_records_that_serialise():
    report = MeanMetric("revenue", "revenue").calculate(event_log(units=50), unit_col="unit_id")
    result = report.get("revenue")
    assert result["p_value"] == result.p_value
    with pytest.raises(AttributeError):
        result.p_value = 0.0
    text = json.dumps(report.to_dict())
    assert json.loads(text)["results"][0]["metric_name"] == "revenue"
    assert list(report.to_frame().metric_name) == ["revenue"]


def test_column_errors_are_raised_before_any_query(query_log):
    source = open_metric_source(event_log(units=20))
    query_log.clear()
    with pytest.raises(ColumnError, match=r"metric 'm': value_col='missing' is not a column"):
        calculate_metrics(source, [MeanMetric("m", "missing")], "variant")
    with pytest.raises(ColumnError, match=r"denominator_col='variant' has type string; expected a numeric"):
        calculate_metrics(source, [RatioMetric("m", "revenue", "variant")], "variant")
    with pytest.raises(ColumnError, match=r"unit_col='user'"):
        calculate_metrics(source, [MeanMetric("m", "revenue")], "variant", unit_col="user")
    with pytest.raises(ColumnError, match=r"covariate_col='ts' has type timestamp"):
        calculate_metrics(source, [MeanMetric("m", "revenue")], "variant", covariate_col="ts")
    with pytest.raises(ParameterError, match=r"metric names must be unique; \['m'\]"):
        calculate_metrics(source, [MeanMetric("m", "revenue"), MeanMetric("m", "pre")], "variant")
    with pytest.raises(ParameterError, match="metrics is empty"):
        calculate_metrics(source, [], "variant")
    with pytest.raises(ParameterError, match=r"alpha=1\.5"):
        calculate_metrics(source, [MeanMetric("m", "revenue")], "variant", alpha=1.5)
    assert query_log == []


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: MeanMetric("", "revenue"), ParameterError, "non-empty string name"),
        (lambda: RatioMetric("r", "revenue", None), ParameterError, "denominator_col=None"),
    ],
)
def test_metric_construction_is_validated(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_data_errors_name_the_metric_and_variant():
    log = event_log(units=40, seed=9)
    with pytest.raises(ParameterError, match=r"control='ctrl' is not a variant.*'control', 'treatment'"):
        MeanMetric("m", "revenue").calculate(log, control="ctrl")
    empty_denominator = log.assign(sessions=np.where(log.variant == "treatment", 0, log.sessions))
    with pytest.raises(DataError, match=r"sessions' sums to 0 in variant 'treatment'"):
        RatioMetric("rps", "revenue", "sessions").calculate(empty_denominator)
    lonely = pd.concat([log[log.variant == "control"], log[log.variant == "treatment"].iloc[:3]])
    lonely = lonely.assign(unit_id=np.where(lonely.variant == "treatment", 7, lonely.unit_id))
    with pytest.raises(DataError, match=r"metric 'm': variant 'treatment' has 1 unit\(s\)"):
        MeanMetric("m", "revenue").calculate(lonely, unit_col="unit_id")
    with pytest.raises(DataError, match=r"holds 1 variant\(s\) \('control'\)"):
        MeanMetric("m", "revenue").calculate(log[log.variant == "control"])
    varying = log.assign(pre=np.arange(len(log), dtype=float))
    with pytest.raises(DataError, match=r"covariate_col='pre' takes different values within \d+ unit"):
        MeanMetric("m", "revenue").calculate(varying, unit_col="unit_id", covariate_col="pre")
