"""Tests of the synthetic exposure-log writer, checked by querying the written Parquet."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb
import pytest

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.synthetic import ExposureLogSpec, demo_log, write_exposure_log

START = datetime(2026, 1, 5)


def q(path, sql: str) -> list[tuple]:
    """Run ``sql`` with ``log`` bound to the Parquet file at ``path``."""
    con = duckdb.connect()
    try:
        return con.execute(f"WITH log AS (FROM read_parquet('{path}')) {sql}").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> ExposureLogSpec:
    path = tmp_path_factory.mktemp("logs") / "plain.parquet"
    arms = {"a": 2.0, "b": 1.0, "c": 1.0}
    return write_exposure_log(path, rows=200_000, days=7, arms=arms, seed=11)


def test_row_count_columns_and_types(plain):
    assert plain.rows_written == plain.rows == 200_000
    assert q(plain.path, "SELECT count(*) FROM log") == [(200_000,)]
    described = duckdb.sql(f"DESCRIBE SELECT * FROM '{plain.path}'").fetchall()
    assert [(row[0], row[1]) for row in described] == [
        ("unit_id", "BIGINT"),
        ("variant", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("value", "DOUBLE"),
    ]
    ((nulls, min_value),) = q(plain.path, "SELECT count(*) - count(value), min(value) FROM log")
    assert nulls == 0
    assert min_value > 0


def test_units_return_and_stay_in_one_arm(plain):
    ((distinct, multi_day, max_arms),) = q(
        plain.path,
        """SELECT count(*), count(*) FILTER (days > 1), max(arms) FROM (
               SELECT unit_id, count(DISTINCT variant) AS arms,
                      count(DISTINCT date_trunc('day', ts)) AS days
               FROM log GROUP BY unit_id)""",
    )
    expected = plain.units * (1 - math.exp(-plain.rows_per_unit))
    assert plain.units == 40_000
    assert abs(distinct - expected) / expected < 0.02
    assert max_arms == 1
    assert multi_day / distinct > 0.8


def test_arm_shares_follow_weights(plain):
    shares = dict(
        q(
            plain.path,
            """SELECT variant, count(DISTINCT unit_id) / sum(count(DISTINCT unit_id)) OVER ()
               FROM log GROUP BY variant""",
        )
    )
    assert shares.keys() == {"a", "b", "c"}
    for arm, want in {"a": 0.5, "b": 0.25, "c": 0.25}.items():
        assert shares[arm] == pytest.approx(want, abs=0.015)


def test_timestamps_in_span_and_row_groups_in_time_order(plain):
    ((low, high),) = q(plain.path, "SELECT min(ts), max(ts) FROM log")
    assert START <= low < START + timedelta(hours=1)
    assert START + timedelta(days=7) - timedelta(hours=1) < high < START + timedelta(days=7)
    mins = [
        row[0]
        for row in duckdb.sql(
            f"""SELECT stats_min_value::TIMESTAMP FROM parquet_metadata('{plain.path}')
                WHERE path_in_schema = 'ts' ORDER BY row_group_id"""
        ).fetchall()
    ]
    assert len(mins) > 1
    assert mins == sorted(mins)
    ((disorder,),) = duckdb.sql(
        f"""SELECT count(*) FILTER (ts < previous) FROM (
                SELECT ts, lag(ts) OVER (ORDER BY file_row_number) AS previous
                FROM read_parquet('{plain.path}', file_row_number = true))"""
    ).fetchall()
    assert disorder == 0


def test_diurnal_cycle_and_flat_traffic(plain, tmp_path):
    hourly = "SELECT max(n) / min(n) FROM (SELECT hour(ts), count(*) AS n FROM log GROUP BY 1)"
    assert q(plain.path, hourly)[0][0] > 1.3
    flat = write_exposure_log(tmp_path / "flat.parquet", rows=50_000, days=2, diurnal=False)
    assert q(flat.path, hourly)[0][0] < 1.2


def _treatment_share(path, where: str) -> float:
    return q(
        path,
        f"""SELECT count(DISTINCT unit_id) FILTER (variant = 'treatment') / count(DISTINCT unit_id)
            FROM log WHERE {where}""",
    )[0][0]


def test_planted_srm_only_after_its_start(tmp_path):
    spec = write_exposure_log(
        tmp_path / "srm.parquet",
        rows=100_000,
        days=4,
        srm={"arm": "treatment", "keep": 0.7, "after": 0.75},
        seed=3,
    )
    assert spec.srm is not None
    assert spec.srm.after == START + timedelta(days=3)
    assert spec.srm.arm == "treatment"
    assert spec.rows_written < spec.rows
    cut = f"TIMESTAMP '{spec.srm.after}'"
    assert _treatment_share(spec.path, f"ts < {cut}") == pytest.approx(0.5, abs=0.015)
    assert _treatment_share(spec.path, f"ts >= {cut}") == pytest.approx(0.7 / 1.7, abs=0.02)


def test_traffic_drop_empties_the_last_hours(tmp_path):
    spec = write_exposure_log(
        tmp_path / "drop.parquet",
        rows=100_000,
        days=3,
        diurnal=False,
        traffic_drop={"after": "2026-01-07 21:00:00", "keep": 0.3},
    )
    assert spec.traffic_drop is not None
    assert spec.traffic_drop.arm is None
    counts = dict(q(spec.path, "SELECT date_trunc('hour', ts), count(*) FROM log GROUP BY 1"))
    before = [counts[START + timedelta(hours=h)] for h in range(66, 69)]
    after = [counts[START + timedelta(hours=h)] for h in range(69, 72)]
    assert max(after) < 0.4 * min(before)
    assert sum(after) / sum(before) == pytest.approx(0.3, abs=0.05)


CHECKSUM = """SELECT count(*), count(DISTINCT unit_id), sum(unit_id), sum(epoch_us(ts)),
                     sum(round(value * 1000)::BIGINT), count(*) FILTER (variant = 'control'),
                     bit_xor(hash(unit_id, variant, ts, value)) FROM log"""


def test_same_seed_same_content_other_seed_other_content(tmp_path):
    def write(name: str, seed: int, threads: int) -> list[tuple]:
        spec = write_exposure_log(tmp_path / name, rows=30_000, days=2, seed=seed, threads=threads)
        return q(spec.path, CHECKSUM)

    first = write("a.parquet", 5, 1)
    assert write("b.parquet", 5, 2) == first
    assert write("c.parquet", 6, 2) != first


def test_a_single_row_and_a_single_arm(tmp_path):
    spec = write_exposure_log(tmp_path / "one.parquet", rows=1, days=0.5, arms={"only": 1})
    assert spec.rows_written == 1
    assert spec.units == 1
    assert q(spec.path, "SELECT variant, ts FROM log") == [("only", START)]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"rows": 0}, "rows"),
        ({"rows": 10.0}, "rows"),
        ({"days": 0}, "days"),
        ({"days": float("nan")}, "days"),
        ({"arms": {}}, "arms"),
        ({"arms": {"a": 1.0, "b": 0.0}}, "arms['b']"),
        ({"arms": {"a": 1.0, "b": -1}}, "arms['b']"),
        ({"rows_per_unit": 0.5}, "rows_per_unit"),
        ({"start": "not a time"}, "start"),
        ({"seed": 2**64}, "seed"),
        ({"threads": 0}, "threads"),
        ({"srm": {"arm": "treatment", "keep": 0.0, "after": 0.5}}, "srm['keep']"),
        ({"srm": {"arm": "treatment", "keep": 1.5, "after": 0.5}}, "srm['keep']"),
        ({"srm": {"arm": "nope", "keep": 0.5, "after": 0.5}}, "srm['arm']"),
        ({"srm": {"keep": 0.5}}, "srm"),
        ({"traffic_drop": {"keep": 0.5, "after": 1.5}}, "traffic_drop['after']"),
        ({"traffic_drop": {"keep": 0.5, "after": "2027-01-01"}}, "traffic_drop['after']"),
    ],
)
def test_bad_parameters_name_the_parameter(tmp_path, kwargs, named):
    arguments = {"rows": 100, **kwargs}
    with pytest.raises(ParameterError, match=named.replace("[", r"\[")):
        write_exposure_log(tmp_path / "bad.parquet", **arguments)
    assert not (tmp_path / "bad.parquet").exists()


def test_a_directory_path_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="path"):
        write_exposure_log(tmp_path, rows=100)


def test_demo_log_plants_an_srm_and_a_traffic_drop(tmp_path):
    spec = demo_log(tmp_path / "demo.parquet")
    end = spec.end
    assert end == START + timedelta(days=7)
    assert 2_800_000 < spec.rows_written < 3_000_000
    srm_start = "TIMESTAMP '2026-01-09 12:00:00'"
    assert _treatment_share(spec.path, f"ts >= {srm_start}") < 0.46
    assert _treatment_share(spec.path, f"ts < {srm_start}") == pytest.approx(0.5, abs=0.002)
    assert _treatment_share(spec.path, "true") < 0.495
    hourly = dict(q(spec.path, "SELECT date_trunc('hour', ts), count(*) FROM log GROUP BY 1"))
    final_hour = end - timedelta(hours=1)
    assert hourly[final_hour] < 0.5 * hourly[final_hour - timedelta(days=1)]
