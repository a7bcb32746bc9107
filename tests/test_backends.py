"""Every check gives the same numbers on every backend as on the embedded DuckDB.

One log (``backends.experiment_log``) is loaded into each backend by the fixtures below; each check
runs there and is compared with the same check on a pandas DataFrame read by the embedded DuckDB,
which is itself compared with the pandas references in ``reference.py``. ``duckdb`` is the user's
own in-memory DuckDB connection, ``duckdb_file`` a ``duckdb://`` URL, ``duckdb_parquet`` a glob of
Parquet files. PostgreSQL runs as a role that may only SELECT from the table; Spark runs in local
mode. Nothing here is skipped: a missing server or JVM fails with a message saying what to install.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import BackendError

import reference as ref
from backends import (
    TABLE,
    arrow_log,
    experiment_log,
    spark_table,
    write_duckdb_file,
    write_parquet_parts,
    write_sqlite,
)

BACKENDS = (
    "duckdb",
    "duckdb_file",
    "duckdb_parquet",
    "postgres",
    "pyspark",
    "datafusion",
    "polars",
    "sqlite",
)
RATIOS = {"control": 1, "treatment": 1}
REVENUE = xs.MeanMetric("revenue", "revenue")
BUYERS = xs.ProportionMetric("buyers", "purchased")
PER_PURCHASE = xs.RatioMetric("revenue per purchase", "revenue", "purchased")
GUARDRAILS = [
    xs.GuardrailMetric(REVENUE, max_allowed_change=0.01, direction="decrease"),
    xs.GuardrailMetric(BUYERS, 0.05, method="ci", shutoff=True),
]

CHECKS: dict[str, Callable[[xs.LiveMonitor], Any]] = {
    "traffic_matrix_hourly": lambda m: m.traffic_matrix(freq="h"),
    "traffic_matrix_15min": lambda m: m.traffic_matrix(freq="15min"),
    "traffic_matrix_daily": lambda m: m.traffic_matrix(freq="D"),
    "traffic_matrix_weekly": lambda m: m.traffic_matrix(freq="W"),
    "cumulative_traffic": lambda m: m.get_cumulative_traffic(freq="h"),
    "traffic_anomaly": lambda m: m.check_traffic_anomaly(freq="h", window=24),
    "chi_square_srm": lambda m: m.check_live_srm(RATIOS),
    "anytime_srm": lambda m: m.check_anytime_srm(RATIOS, freq="h", concentration=500),
    "sprt": lambda m: m.check_sequential_srm(freq="h"),
    "multiple_exposure": lambda m: m.check_multiple_exposure(),
    "srm_by_segment": lambda m: m.check_srm_by("platform", RATIOS),
    "metrics": lambda m: m.calculate_metrics([REVENUE, BUYERS]),
    "ratio_metric": lambda m: m.calculate_metrics([PER_PURCHASE]),
    "guardrails": lambda m: m.check_guardrails(GUARDRAILS),
    "telemetry": lambda m: m.run_telemetry_checks(RATIOS, freq="h", sequential_method="sprt"),
}
CANNOT_RUN = {
    ("polars", "sprt"): ("check_sequential_srm", "has no window functions"),
    ("polars", "telemetry"): ("check_sequential_srm", "has no window functions"),
    ("polars", "ratio_metric"): ("calculate_metrics", "has no Covariance operation"),
    ("sqlite", "ratio_metric"): ("calculate_metrics", "has no Covariance operation"),
}
"""(backend, check) -> words the BackendError must hold: the check, and what the engine lacks.

The SPRT's first-crossing query needs window functions (Polars has none); a ratio metric's delta-method
variance needs a covariance aggregate (neither Polars' nor SQLite's Ibis backend has one).
"""


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@functools.cache
def log() -> pd.DataFrame:
    return experiment_log()


@pytest.fixture(scope="session")
def open_monitor(request, tmp_path_factory) -> Callable[[str], xs.LiveMonitor]:
    """``open_monitor(backend)``: a monitor over the log on that backend, loaded once per session."""
    opened: dict[str, xs.LiveMonitor] = {}

    def open_on(backend: str) -> xs.LiveMonitor:
        if backend not in opened:
            folder = tmp_path_factory.mktemp(backend)
            data, table = _load(backend, request, folder)
            opened[backend] = xs.LiveMonitor(data, time_col="ts", table=table)
        return opened[backend]

    return open_on


def _load(backend: str, request, folder) -> tuple[Any, str | None]:
    """What a user would hand the monitor for ``backend``: a URL and table name, a glob, or an Ibis table."""
    frame = log()
    if backend == "duckdb_file":
        write_duckdb_file(frame, folder / "warehouse.duckdb")
        return f"duckdb://{folder / 'warehouse.duckdb'}", f"logs.{TABLE}"
    if backend == "duckdb_parquet":
        return write_parquet_parts(frame, folder / "parts"), None
    if backend == "postgres":
        user, password = request.getfixturevalue("postgres_reader")
        return request.getfixturevalue("postgres_server").url(user, password), f"public.{TABLE}"
    if backend == "pyspark":
        return spark_table(request.getfixturevalue("spark"), frame), None
    if backend == "duckdb":
        return ibis.duckdb.connect().create_table(TABLE, arrow_log(frame)), None
    if backend == "sqlite":
        write_sqlite(frame, folder / "log.sqlite")
        return ibis.sqlite.connect(folder / "log.sqlite").table(TABLE), None
    con = getattr(ibis, backend).connect()
    return con.create_table(TABLE, arrow_log(frame)), None


@functools.cache
def on_duckdb(check: str) -> dict:
    """The check on the embedded DuckDB, over the pandas DataFrame: what every backend must match."""
    return as_record(CHECKS[check](xs.LiveMonitor(log(), time_col="ts")))


def as_record(result: Any) -> dict:
    if isinstance(result, pd.DataFrame):
        return {"frame": xs.results.to_jsonable(result)}
    return result.to_dict()


def assert_same(got: Any, expected: Any, where: str = "") -> None:
    """Equal structures; floats equal to 1e-9 relative (backends sum in different orders)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), where
        assert sorted(got) == sorted(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)), where
        assert len(got) == len(expected), where
        for index, (left, right) in enumerate(zip(got, expected, strict=True)):
            assert_same(left, right, f"{where}[{index}]")
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert isinstance(got, (int, float)), f"{where}: {got!r} != {expected!r}"
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {got!r} != {expected!r}"
    elif isinstance(expected, str) and isinstance(got, str) and any(c.isdigit() for c in expected):
        assert NUMBER.sub("#", got) == NUMBER.sub("#", expected), f"{where}: {got!r} != {expected!r}"
        assert _numbers(got) == pytest.approx(_numbers(expected), rel=1e-6), f"{where}: {got!r}"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def _numbers(text: str) -> list[float]:
    """The numbers in a message, so that ``p = 1.2300000001e-05`` and ``1.23e-05`` compare equal."""
    return [float(token) for token in NUMBER.findall(text)]


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_check_matches_duckdb(open_monitor, backend, check):
    monitor = open_monitor(backend)
    if (backend, check) in CANNOT_RUN:
        with pytest.raises(BackendError) as info:
            CHECKS[check](monitor)
        assert f"the {backend} backend" in str(info.value)
        for words in CANNOT_RUN[backend, check]:
            assert words in str(info.value)
        return
    assert_same(as_record(CHECKS[check](monitor)), on_duckdb(check), check)


def test_the_log_exercises_every_feature_the_backends_must_get_right():
    clean = log().dropna(subset=["ts", "unit_id", "variant"])
    units = ref.distinct_units(clean)
    assert units["control"] > units["treatment"] * 1.2, "a planted SRM"
    assert (clean.groupby("unit_id").variant.nunique() > 1).sum() == 1, "one unit in both arms"
    assert clean.unit_id.map(type).eq(str).all(), "string unit ids"
    report = on_duckdb("telemetry")
    assert report["sequential_srm"]["stopped_index"] >= 0, "the SPRT crosses, so its window query runs"
    assert set(report["alerts_triggered"]) >= {"SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED"}


@pytest.mark.parametrize("freq", ["h", "15min", "D"])
def test_duckdb_matches_the_pandas_reference(freq):
    monitor = xs.LiveMonitor(log(), time_col="ts")
    clean = log().dropna(subset=["ts", "unit_id", "variant"])
    matrix = monitor.traffic_matrix(freq=freq)
    expected = ref.binned_traffic(clean, freq)
    assert matrix.active.tolist() == expected.to_numpy().tolist()
    assert matrix.new.tolist() == ref.binned_traffic(clean, freq, "new").to_numpy().tolist()
    live = monitor.check_live_srm(RATIOS)
    assert live.p_value == pytest.approx(ref.live_srm(clean, RATIOS)["p_value"], rel=1e-12)
    sequential = monitor.check_sequential_srm(freq=freq)
    reference = ref.sequential_srm(clean, freq=freq)
    assert sequential.stopped_index == reference["stopped_index"]
    assert pd.Timestamp(sequential.stopped_at).tz_localize(None) == reference["stopped_at"]
    np.testing.assert_allclose(
        sequential.running_log_likelihood_ratios, reference["running_log_likelihood_ratios"], rtol=1e-9
    )


def test_spark_checks_leave_the_catalog_as_they_found_it(open_monitor, spark):
    monitor = open_monitor("pyspark")
    before = sorted((t.name, t.isTemporary) for t in spark.catalog.listTables())
    for check in ("telemetry", "srm_by_segment", "metrics"):
        CHECKS[check](monitor)
    assert sorted((t.name, t.isTemporary) for t in spark.catalog.listTables()) == before


FLEET_CONFIG = """
[defaults]
freq = "h"

[[experiment]]
id = "ios"
ratios = { control = 1, treatment = 1 }

[[experiment.guardrails]]
name = "revenue"
metric = "mean"
value_col = "revenue"
direction = "decrease"

[[experiment.guardrails]]
name = "buyers"
metric = "proportion"
value_col = "purchased"
max_allowed_change = 0.05
method = "ci"
shutoff = true

[[experiment]]
id = "android"
ratios = { control = 1, treatment = 1 }
sequential_method = "sprt"
"""


@pytest.mark.parametrize("backend", ["duckdb_parquet", "postgres", "pyspark"])
def test_check_all_on_every_engine_counts_each_experiment_as_pandas_does(open_monitor, backend, tmp_path):
    """The platform column stands in for the experiment: ``android`` (where treatment lost units)
    breaks its split, ``ios`` does not, ``web`` is in the data only."""
    config = tmp_path / "fleet.toml"
    config.write_text(FLEET_CONFIG)
    fleet = open_monitor(backend).check_all(config, experiment_col="platform")
    assert fleet.queries == 3, "one query per plan (the anytime test's and the SPRT's), one for guardrails"
    frame = log()
    ios = frame[frame.platform == "ios"]
    guarded = xs.LiveMonitor(ios, time_col="ts").check_guardrails(GUARDRAILS)
    fleet_guarded = fleet["ios"].report.guardrails
    assert [(g.metric_name, g.status) for g in fleet_guarded.results] == [
        (g.metric_name, g.status) for g in guarded.results
    ]
    for mine, alone in zip(fleet_guarded.results, guarded.results, strict=True):
        assert mine.relative_lift == pytest.approx(alone.relative_lift, rel=1e-9)
        assert mine.relative_ci_lower == pytest.approx(alone.relative_ci_lower, rel=1e-9)
    per_unit = ios.groupby(["variant", "unit_id"]).revenue.sum(min_count=1).groupby("variant").mean()
    assert fleet_guarded.results[0].relative_lift == pytest.approx(
        per_unit["treatment"] / per_unit["control"] - 1, rel=1e-9
    )
    assert [(s.experiment, s.status) for s in fleet.experiments] == [
        ("android", "shutoff"),
        ("ios", "healthy"),
        ("web", "unconfigured"),
    ]
    for status in fleet.experiments:
        rows = frame[frame.platform == status.experiment]
        assert status.units == rows.unit_id.nunique()
    for name in ("android", "ios"):
        rows = frame[frame.platform == name]
        units = rows.groupby("variant").unit_id.nunique()
        report = fleet[name].report
        assert report.traffic.units.tolist() == units.loc[list(report.traffic.variants)].tolist()
        alone = ref.live_srm(rows, RATIOS)
        assert report.cumulative_srm.p_value == pytest.approx(alone["p_value"], rel=1e-12)
