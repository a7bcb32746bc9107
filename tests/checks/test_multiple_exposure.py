"""Units seen under several variants: counts against pandas, the alert, and how SRM checks count them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ParameterError

from conftest import make_log


def leaky_log() -> pd.DataFrame:
    """Three arms; some units also show up under a second variant, a few under all three."""
    log = make_log(units=1500, rows=15_000, variants=("a", "b", "c"), seed=4)
    rng = np.random.default_rng(5)
    movers = log.drop_duplicates("unit_id").sample(90, random_state=6)
    other = {"a": "b", "b": "c", "c": "a"}
    second = movers.assign(variant=movers.variant.map(other))
    everywhere = movers.head(7)
    third = everywhere.assign(variant=everywhere.variant.map(other).map(other))
    extra = pd.concat([second, third])
    extra = extra.assign(ts=rng.choice(log.ts.to_numpy(), len(extra)))
    log = pd.concat([log, extra], ignore_index=True)
    missing = pd.DataFrame({"unit_id": [1, 2], "variant": [None, None], "ts": log.ts.iloc[:2].to_list()})
    return pd.concat([log, missing], ignore_index=True)


def reference(log: pd.DataFrame) -> tuple[int, int, dict[tuple[str, str], int]]:
    """Distinct units, units under 2+ variants, and units per pair of variants, in pandas."""
    rows = log.dropna(subset=["variant", "unit_id", "ts"])
    variants_of = rows.groupby("unit_id").variant.agg(lambda v: sorted(set(v)))
    pairs: dict[tuple[str, str], int] = {}
    for names in variants_of:
        for pair in itertools.combinations(names, 2):
            pairs[pair] = pairs.get(pair, 0) + 1
    return len(variants_of), int((variants_of.str.len() > 1).sum()), pairs


def test_counts_equal_the_pandas_reference_in_one_query(query_log):
    log = leaky_log()
    result = xs.LiveMonitor(log, time_col="ts").check_multiple_exposure()
    units, multiple, pairs = reference(log)
    assert len(query_log) == 1
    assert (result.units, result.multiple_units) == (units, multiple) == (1500, 90)
    assert result.share == pytest.approx(90 / 1500)
    got = {(r.first_variant, r.second_variant): r.units for r in result.pairs.itertuples()}
    assert got == pairs
    assert sum(got.values()) == 90 + 2 * 7, "a unit under three variants is in three pairs"
    assert list(result.pairs.units) == sorted(result.pairs.units, reverse=True)
    assert result.multiple_exposure_detected
    top = result.pairs.iloc[0]
    assert f"{top.first_variant} & {top.second_variant}: {top.units}" in result.message
    assert result["multiple_units"] == 90


def test_string_units_and_the_threshold():
    log = make_log(units=1000, rows=5000)
    log = log.assign(unit_id="user-" + log.unit_id.astype(str))
    shared = log.drop_duplicates("unit_id").head(8).assign(variant="treatment")
    monitor = xs.LiveMonitor(pd.concat([log, shared]), time_col="ts")
    below = monitor.check_multiple_exposure(max_share=0.01)
    assert below.multiple_units == int((log.drop_duplicates("unit_id").head(8).variant == "control").sum())
    assert not below.multiple_exposure_detected
    assert "within max_share=1.00%" in below.message
    assert monitor.check_multiple_exposure(max_share=0.001).multiple_exposure_detected


def test_a_clean_log_has_no_pairs():
    result = xs.LiveMonitor(make_log(), time_col="ts").check_multiple_exposure()
    assert (result.multiple_units, result.share) == (0, 0.0)
    assert result.pairs.empty
    assert list(result.pairs.columns) == ["first_variant", "second_variant", "units"]


@pytest.mark.parametrize("freq", ["h", "D", "15min"])
def test_telemetry_counts_from_the_matrix_query_equal_the_pandas_reference(query_log, freq):
    """The events per bin summed over bins, at several evaluation instants and bin sizes."""
    log = leaky_log()
    for until in (None, log.ts.quantile(0.3), log.ts.quantile(0.8)):
        query_log.clear()
        report = xs.LiveMonitor(log, time_col="ts", until=until).run_telemetry_checks(
            [1, 1, 1], freq=freq
        )
        assert len(query_log) == 1, "multiple exposure comes from the traffic matrix's query"
        units, multiple, pairs = reference(log if until is None else log[log.ts < until])
        got = report.multiple_exposure
        assert (got.units, got.multiple_units) == (units, multiple)
        assert {(r.first_variant, r.second_variant): r.units for r in got.pairs.itertuples()} == pairs


def test_telemetry_alerts_above_max_share_without_the_shutoff():
    log = leaky_log()
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1, 1], freq="h")
    assert report.alerts_triggered == ("MULTIPLE_EXPOSURE",)
    assert report.multiple_exposure.multiple_units == 90
    assert report.multiple_exposure.message == monitor.check_multiple_exposure().message
    assert not report.shutoff_triggered
    quiet = monitor.run_telemetry_checks([1, 1, 1], freq="h", max_multiple_exposure_share=0.1)
    assert quiet.alerts_triggered == ()


def test_a_unit_under_two_variants_counts_once_in_each_variant():
    """The documented choice: such units are kept in every variant they were seen under."""
    log = leaky_log()
    rows = log.dropna(subset=["variant"])
    per_variant = rows.groupby("variant").unit_id.nunique()
    assert per_variant.sum() == 1500 + 90 + 7
    monitor = xs.LiveMonitor(log, time_col="ts")
    assert monitor.check_live_srm([1, 1, 1]).observed_counts == tuple(per_variant)
    assert monitor.check_anytime_srm([1, 1, 1]).observed_counts == tuple(per_variant)
    assert tuple(monitor.get_cumulative_traffic().iloc[-1]) == tuple(per_variant)


@pytest.mark.parametrize("max_share", [0, 1, 1.5, -0.1, "1%", True])
def test_bad_max_share(log, query_log, max_share):
    monitor = xs.LiveMonitor(log, time_col="ts")
    with pytest.raises(ParameterError) as info:
        monitor.check_multiple_exposure(max_share=max_share)
    assert f"max_share={max_share!r} must be a share between 0 and 1" in str(info.value)
    with pytest.raises(
        ParameterError, match=r"max_multiple_exposure_share=.* must be a share between 0 and 1"
    ):
        monitor.run_telemetry_checks([1, 1], max_multiple_exposure_share=max_share)
    assert query_log == []
