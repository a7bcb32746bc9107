"""Parity of every LiveMonitor method with a plain pandas reference of the seed's computations.

The reference (``reference.py``) follows the seed's pandas code with the library's deliberate
changes: empty bins kept as zeros, ``new`` counts at first exposure, cumulative = running sum of
``new``, and the SPRT over (variant, unit) pairs in order of (first exposure, unit id, variant).
Logs are generated here with numpy from fixed seeds.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import xpyrment_sql as xs

import reference as ref

START = pd.Timestamp("2024-03-04 00:00:00")
FREQS = ("h", "15min", "D")


# --------------------------------------------------------------------------------------------------
# Log generators
# --------------------------------------------------------------------------------------------------


def _frame(unit, variant, ts, seed: int) -> pd.DataFrame:
    df = pd.DataFrame({"unit_id": unit, "variant": variant, "ts": ts})
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def returning_log(seed: int, variants, n_units: int, days: int = 3, probs=None, visits: float = 4.0):
    """Each unit keeps one variant and comes back ``1 + Poisson(visits)`` times over ``days`` days.

    Variants are drawn uniformly, or, with ``probs``, planted exactly in those proportions.
    """
    rng = np.random.default_rng(seed)
    if probs is None:
        assigned = rng.choice(np.asarray(variants, dtype=object), size=n_units)
    else:  # planted split: exactly round(p * n_units) units per arm, in random order
        sizes = np.round(np.asarray(probs) * n_units).astype(int)
        assigned = rng.permutation(np.repeat(np.asarray(variants, dtype=object), sizes))
        n_units = assigned.size
    counts = rng.poisson(visits, n_units) + 1
    unit = np.repeat(np.arange(n_units), counts)
    seconds = rng.integers(0, days * 86_400, unit.size)
    return _frame(unit, np.repeat(assigned, counts), START + pd.to_timedelta(seconds, unit="s"), seed)


def gap_log(seed: int) -> pd.DataFrame:
    """Two days of returning traffic with nothing at all between 20:00 and 03:00 the next day."""
    df = returning_log(seed, ["control", "treatment"], 250, days=2)
    hole = (df["ts"] >= START + pd.Timedelta(hours=20)) & (df["ts"] < START + pd.Timedelta(hours=27))
    return df[~hole].reset_index(drop=True)


def ties_log(seed: int) -> pd.DataFrame:
    """Rows (and first exposures of different units) share a handful of exact instants."""
    rng = np.random.default_rng(seed)
    instants = START + pd.to_timedelta(np.sort(rng.choice(2 * 86_400, size=14, replace=False)), unit="s")
    n_rows = 900
    unit = rng.integers(0, 220, n_rows)
    assigned = np.where(rng.random(220) < 0.5, "control", "treatment")
    return _frame(unit, assigned[unit], instants[rng.integers(0, instants.size, n_rows)], seed)


def crossover_log(seed: int) -> pd.DataFrame:
    """String unit ids, some units exposed to both arms (each (variant, unit) pair counts)."""
    df = returning_log(seed, ["ctrl", "test"], 200, days=3)
    rng = np.random.default_rng(seed + 100)
    movers = df.drop_duplicates("unit_id").sample(40, random_state=seed)
    extra = movers.assign(
        variant=np.where(movers["variant"] == "ctrl", "test", "ctrl"),
        ts=movers["ts"] + pd.to_timedelta(rng.integers(-20_000, 20_000, len(movers)), unit="s"),
    )
    df = pd.concat([df, extra], ignore_index=True)
    return df.assign(unit_id="u" + df["unit_id"].astype(str))


def subsecond_log(seed: int) -> pd.DataFrame:
    """Millisecond timestamps right next to bin edges (xx:59:59.999 and xx:00:00.000)."""
    rng = np.random.default_rng(seed)
    edges = START + pd.to_timedelta(rng.integers(1, 60, 300), unit="h")
    offsets = pd.to_timedelta(rng.choice([-1, 0, 1, 899_999, 900_000], size=300), unit="ms")
    unit = rng.integers(0, 120, 300)
    variant = np.where(unit % 3 == 0, "b", "a")
    return _frame(unit, variant, edges + offsets, seed)


def control_last_log(seed: int) -> pd.DataFrame:
    """Two arms whose control sorts last: ``a_new`` (treatment) and ``b_control``."""
    return returning_log(seed, ["a_new", "b_control"], 300, probs=[0.7, 0.3])


CASES = {
    "two_arm_returning": returning_log(1, ["control", "treatment"], 300),
    "three_arm_returning": returning_log(2, ["a", "b", "c"], 400),
    "gap": gap_log(3),
    "ties": ties_log(4),
    "crossover": crossover_log(5),
    "subsecond": subsecond_log(6),
    "control_last": control_last_log(7),
}
TWO_ARM = [name for name, df in CASES.items() if df["variant"].nunique() == 2]


def single_exposures(variants_in_order, seconds_apart: int = 60, seed: int = 0) -> pd.DataFrame:
    """One row per unit, in time order; unit ids are shuffled so that they do not follow time."""
    n = len(variants_in_order)
    unit = np.random.default_rng(seed).permutation(n) + 10_000
    ts = START + pd.to_timedelta(np.arange(n) * seconds_apart, unit="s")
    return _frame(unit, list(variants_in_order), ts, seed)


def daily_volume_log(daily_units, seed: int = 0) -> pd.DataFrame:
    """Day ``d`` has exactly ``daily_units[d]`` distinct units (fresh ones), each seen 1-3 times."""
    rng = np.random.default_rng(seed)
    frames, next_unit = [], 0
    for day, n in enumerate(daily_units):
        units = np.arange(next_unit, next_unit + n)
        next_unit += n
        repeat = rng.integers(1, 4, n)
        unit = np.repeat(units, repeat)
        seconds = rng.integers(0, 86_400, unit.size)
        frames.append(
            pd.DataFrame(
                {
                    "unit_id": unit,
                    "variant": np.where(unit % 2 == 0, "control", "treatment"),
                    "ts": START + pd.Timedelta(days=day) + pd.to_timedelta(seconds, unit="s"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)


def monitor(df) -> xs.LiveMonitor:
    return xs.LiveMonitor(df, time_col="ts")


def telemetry(mon: xs.LiveMonitor, expected_ratios, **kwargs):
    """run_telemetry_checks with the seed's tests (z-score drop, two-arm SPRT), no multiple exposure.

    Those are the three alerts this file compares with the reference; the anytime-valid test and the
    multiple-exposure alert are library extensions with no counterpart in the seed.
    """
    return mon.run_telemetry_checks(
        expected_ratios,
        sequential_method="sprt",
        max_multiple_exposure_share=None,
        drop_method="zscore",
        **kwargs,
    )


@functools.cache
def case_monitor(case: str) -> xs.LiveMonitor:
    """One monitor per case for the read-only checks (run_telemetry_checks always gets a fresh one)."""
    return monitor(CASES[case])


def assert_matrix_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same bins (as instants), same sorted variant columns, same integer counts."""
    assert list(got.columns) == list(expected.columns)
    got_index = pd.DatetimeIndex(got.index).as_unit("ns")
    expected_index = pd.DatetimeIndex(expected.index).as_unit("ns")
    np.testing.assert_array_equal(got_index.to_numpy(), expected_index.to_numpy())
    np.testing.assert_array_equal(got.to_numpy(dtype=np.int64), expected.to_numpy(dtype=np.int64))
    pd.testing.assert_frame_equal(
        got.set_axis(expected_index, axis=0),
        expected.set_axis(expected_index, axis=0),
        check_dtype=False,
        check_names=False,
        check_column_type=False,
        check_index_type=False,
    )


# --------------------------------------------------------------------------------------------------
# Binned and cumulative traffic
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("case", list(CASES))
def test_binned_traffic_matches_reference(case, freq):
    df = CASES[case]
    mon = case_monitor(case)
    assert_matrix_equal(mon.get_binned_traffic(freq=freq), ref.binned_traffic(df, freq, "active"))
    assert_matrix_equal(mon.get_binned_traffic(freq=freq, count="new"), ref.binned_traffic(df, freq, "new"))


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("case", list(CASES))
def test_cumulative_traffic_is_running_sum_of_first_exposures(case, freq):
    df = CASES[case]
    got = case_monitor(case).get_cumulative_traffic(freq=freq)
    assert_matrix_equal(got, ref.cumulative_traffic(df, freq))
    np.testing.assert_array_equal(got.iloc[-1].to_numpy(), ref.distinct_units(df).to_numpy())


@pytest.mark.parametrize(("freq", "empty_bins"), [("h", 7), ("15min", 28)])
def test_empty_bins_inside_the_range_are_zero_rows(freq, empty_bins):
    df = CASES["gap"]
    got = monitor(df).get_binned_traffic(freq=freq)
    hole = (got.index >= START + pd.Timedelta(hours=20)) & (got.index < START + pd.Timedelta(hours=27))
    assert hole.sum() == empty_bins
    assert (got[hole].to_numpy() == 0).all()
    assert (got[~hole].sum(axis=1) > 0).all()
    steps = np.diff(pd.DatetimeIndex(got.index).as_unit("ns").asi8)
    assert (steps == pd.tseries.frequencies.to_offset(freq).nanos).all()


def test_cumulative_differs_from_the_seeds_cumsum_of_active_counts():
    """Returning units make the seed's cumsum(active) overcount; the library must not."""
    df = CASES["two_arm_returning"]
    got = monitor(df).get_cumulative_traffic(freq="h")
    seed_style = ref.binned_traffic(df, "h", "active").cumsum()
    assert (seed_style.iloc[-1].to_numpy() > got.iloc[-1].to_numpy()).all()
    np.testing.assert_array_equal(got.iloc[-1].to_numpy(), ref.distinct_units(df).to_numpy())


def test_subsecond_edges_are_floored_into_the_earlier_bin():
    df = pd.DataFrame(
        {
            "unit_id": [1, 2, 3],
            "variant": ["a", "b", "a"],
            "ts": pd.to_datetime(
                ["2024-03-04 10:59:59.999", "2024-03-04 11:00:00.000", "2024-03-04 11:14:59.999999"]
            ),
        }
    )
    got = monitor(df).get_binned_traffic(freq="15min")
    assert list(pd.DatetimeIndex(got.index).as_unit("ns")) == list(
        pd.date_range("2024-03-04 10:45", "2024-03-04 11:00", freq="15min")
    )
    np.testing.assert_array_equal(got.to_numpy(), [[1, 0], [1, 1]])


# --------------------------------------------------------------------------------------------------
# Traffic anomaly
# --------------------------------------------------------------------------------------------------

ANOMALY_KEYS = ("anomaly_detected", "latest_volume", "historical_mean", "historical_std", "z_score")


def assert_anomaly_equal(got, expected) -> None:
    assert set(got.keys()) >= {*ANOMALY_KEYS, "message"}
    assert got["anomaly_detected"] is expected["anomaly_detected"]
    for key in ANOMALY_KEYS[1:]:
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key
        assert getattr(got, key) == got[key]
    assert got["message"].endswith(expected["message"])


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("case", list(CASES))
def test_traffic_anomaly_matches_reference(case, freq):
    df = CASES[case]
    got = case_monitor(case).check_traffic_anomaly(freq=freq, window=7, z_threshold=3.0, method="zscore")
    assert_anomaly_equal(got, ref.traffic_anomaly(df, freq, window=7, z_threshold=3.0))


def test_traffic_anomaly_flags_a_big_drop_in_the_last_complete_bin():
    daily = [100, 104, 97, 101, 99, 103, 98, 102, 100, 12]
    df = daily_volume_log([*daily, 40], seed=11)
    got = monitor(df).check_traffic_anomaly(freq="D", window=7, method="zscore")
    expected = ref.traffic_anomaly(df, "D", window=7)
    assert expected["anomaly_detected"] is True
    assert_anomaly_equal(got, expected)
    assert got["latest_volume"] == 12.0
    assert got["historical_mean"] == pytest.approx(np.mean(daily[-8:-1]))
    assert got.judged_bin == START + pd.Timedelta(days=len(daily) - 1)
    assert got.unfinished_bin == START + pd.Timedelta(days=len(daily))
    assert got["z_score"] < -3.0


def test_traffic_anomaly_no_alarm_for_an_ordinary_last_bin():
    df = daily_volume_log([100, 104, 97, 101, 99, 103, 98, 102, 100, 96, 5], seed=12)
    got = monitor(df).check_traffic_anomaly(freq="D", window=7, method="zscore")
    expected = ref.traffic_anomaly(df, "D", window=7)
    assert expected["anomaly_detected"] is False
    assert_anomaly_equal(got, expected)


@pytest.mark.parametrize(("last", "detected"), [(10, True), (40, False)])
def test_traffic_anomaly_zero_variance_uses_the_drop_fallback(last, detected):
    df = daily_volume_log([50] * 8 + [last, 50], seed=13)
    got = monitor(df).check_traffic_anomaly(freq="D", window=7, drop_threshold=0.5, method="zscore")
    expected = ref.traffic_anomaly(df, "D", window=7, drop_threshold=0.5)
    assert expected["historical_std"] == 0.0
    assert_anomaly_equal(got, expected)
    assert got["anomaly_detected"] is detected
    assert got["z_score"] == 0.0
    assert got["historical_mean"] == 50.0
    assert "Degenerate variance" in got["message"]


def test_traffic_anomaly_counts_empty_bins_in_the_baseline():
    """Hourly traffic, then 3 silent hours, then 2 more hours: the zeros are part of the history."""
    rng = np.random.default_rng(21)
    hours = [*range(30), 33, 34, 35]
    rows = []
    for h in hours:
        n = 5 if h >= 34 else int(rng.integers(40, 46))
        for u in range(n):
            rows.append(
                (h * 1000 + u, "control" if u % 2 else "treatment", h * 3600 + int(rng.integers(3600)))
            )
    df = pd.DataFrame(rows, columns=["unit_id", "variant", "seconds"])
    df = df.assign(ts=START + pd.to_timedelta(df.pop("seconds"), unit="s"))
    got = monitor(df).check_traffic_anomaly(freq="h", window=7, method="zscore")
    expected = ref.traffic_anomaly(df, "h", window=7)
    assert_anomaly_equal(got, expected)
    # The seed (empty bins dropped) would see a history without zeros: a different baseline mean.
    seed_volumes = df.assign(bin=df["ts"].dt.floor("h")).groupby("bin")["unit_id"].nunique().to_numpy()
    assert got["historical_mean"] != pytest.approx(np.mean(seed_volumes[-9:-2]))
    assert got["historical_mean"] < np.mean(seed_volumes[-9:-2])


def test_traffic_anomaly_with_too_few_bins_gives_no_verdict():
    df = daily_volume_log([100, 3, 50], seed=14)
    got = monitor(df).check_traffic_anomaly(freq="D", method="zscore")
    expected = ref.traffic_anomaly(df, "D")
    assert_anomaly_equal(got, expected)
    assert got["anomaly_detected"] is False
    assert got["historical_mean"] == 100.0


# --------------------------------------------------------------------------------------------------
# Live (chi-square) SRM
# --------------------------------------------------------------------------------------------------


def assert_live_srm_equal(got, expected) -> None:
    assert got["p_value"] == pytest.approx(expected["p_value"], rel=1e-12, abs=1e-300)
    assert got.p_value == got["p_value"]
    assert got["chi_square"] == pytest.approx(expected["chi_square"], rel=1e-12)
    assert list(got["observed_counts"]) == expected["observed_counts"]
    assert list(got["variants"]) == expected["variants"]
    np.testing.assert_allclose(got["expected_counts"], expected["expected_counts"], rtol=1e-12)
    assert got["srm_detected"] is expected["srm_detected"]


@pytest.mark.parametrize("case", list(CASES))
def test_live_srm_matches_scipy_on_distinct_units(case):
    df = CASES[case]
    variants = sorted(df["variant"].unique())
    ratios = [1.0] * len(variants)
    got = case_monitor(case).check_live_srm(ratios)
    expected = ref.live_srm(df, ratios)
    assert_live_srm_equal(got, expected)
    assert got["alpha"] == 0.001


def test_live_srm_with_dict_ratios_and_unnormalised_weights():
    df = CASES["three_arm_returning"]
    ratios = {"c": 5.0, "a": 2.0, "b": 3.0}
    got = monitor(df).check_live_srm(ratios, alpha=0.05)
    expected = ref.live_srm(df, ratios, alpha=0.05)
    assert_live_srm_equal(got, expected)
    units = ref.distinct_units(df).to_numpy()
    _, p_direct = stats.chisquare(units, units.sum() * np.array([0.2, 0.3, 0.5]))
    assert got["p_value"] == pytest.approx(p_direct, rel=1e-12)


@pytest.mark.parametrize(
    ("variants", "probs", "ratios"),
    [
        (["control", "treatment"], [0.55, 0.45], [1, 1]),
        (["a", "b", "c"], [0.4, 0.3, 0.3], [1, 1, 1]),
    ],
)
def test_live_srm_detects_a_planted_mismatch(variants, probs, ratios):
    df = returning_log(31, variants, 3000, probs=probs)
    got = monitor(df).check_live_srm(ratios)
    expected = ref.live_srm(df, ratios)
    assert expected["p_value"] < 1e-4
    assert_live_srm_equal(got, expected)
    assert got["srm_detected"] is True
    # The same data is no SRM against the ratios it was drawn with.
    assert monitor(df).check_live_srm(probs)["srm_detected"] is False


def test_live_srm_counts_units_not_rows():
    """Treatment units return 5x as often: rows are skewed, distinct units are not."""
    rng = np.random.default_rng(41)
    unit = np.arange(1000)
    variant = np.where(unit % 2 == 0, "control", "treatment")
    repeats = np.where(variant == "treatment", 5, 1)
    df = pd.DataFrame(
        {
            "unit_id": np.repeat(unit, repeats),
            "variant": np.repeat(variant, repeats),
            "ts": START + pd.to_timedelta(rng.integers(0, 86_400, repeats.sum()), unit="s"),
        }
    )
    got = monitor(df).check_live_srm([1, 1])
    assert tuple(got["observed_counts"]) == (500, 500)
    assert got["p_value"] == pytest.approx(1.0)
    assert got["srm_detected"] is False


# --------------------------------------------------------------------------------------------------
# Sequential SRM (SPRT)
# --------------------------------------------------------------------------------------------------


def assert_sequential_equal(got, expected) -> None:
    assert got["stopped_index"] == expected["stopped_index"]
    assert got.stopped_index == got["stopped_index"]
    assert got["srm_detected"] is expected["srm_detected"]
    assert got["control"] == expected["control"]
    assert got["treatment"] == expected["treatment"]
    np.testing.assert_array_equal(
        pd.DatetimeIndex(got["bins"]).as_unit("ns").to_numpy(), expected["bins"].as_unit("ns").to_numpy()
    )
    np.testing.assert_allclose(
        got["running_likelihood_ratios"], expected["running_likelihood_ratios"], rtol=1e-9, atol=0
    )
    np.testing.assert_allclose(
        got["running_log_likelihood_ratios"], expected["running_log_likelihood_ratios"], rtol=1e-9, atol=1e-12
    )
    if expected["stopped_at"] is None:
        assert got["stopped_at"] is None
    else:
        assert pd.Timestamp(got["stopped_at"]) == pd.Timestamp(expected["stopped_at"])


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("case", TWO_ARM)
def test_sequential_srm_matches_reference(case, freq):
    df = CASES[case]
    got = case_monitor(case).check_sequential_srm(freq=freq)
    assert_sequential_equal(got, ref.sequential_srm(df, 0.5, 0.02, 0.01, freq))


@pytest.mark.parametrize("case", TWO_ARM)
def test_sequential_srm_matches_reference_with_other_parameters(case):
    df = CASES[case]
    got = case_monitor(case).check_sequential_srm(
        target_treatment_ratio=0.45, delta=0.05, alpha=0.05, freq="h"
    )
    assert_sequential_equal(got, ref.sequential_srm(df, 0.45, 0.05, 0.05, "h"))


def test_sequential_srm_balanced_log_does_not_cross():
    df = CASES["two_arm_returning"]
    expected = ref.sequential_srm(df, freq="h")
    assert expected["stopped_index"] == -1
    got = monitor(df).check_sequential_srm(freq="h")
    assert_sequential_equal(got, expected)
    assert got["srm_detected"] is False
    assert (np.asarray(got["running_likelihood_ratios"]) < 100).all()


@pytest.mark.parametrize("freq", ["h", "D"])
@pytest.mark.parametrize("probs", [[0.4, 0.6], [0.6, 0.4]], ids=["treatment_heavy", "control_heavy"])
def test_sequential_srm_planted_imbalance_crosses(probs, freq):
    df = returning_log(51, ["control", "treatment"], 2000, probs=probs)
    expected = ref.sequential_srm(df, freq=freq)
    assert expected["stopped_index"] >= 0
    got = monitor(df).check_sequential_srm(freq=freq)
    assert_sequential_equal(got, expected)
    assert got["srm_detected"] is True
    assert got["running_likelihood_ratios"][-1] >= 100


def _known_crossing(sequence, p0=0.5, delta=0.02, alpha=0.01) -> int:
    """First 0-based n with 0.5*prod f(y|p0+d)/f(y|p0) + 0.5*prod f(y|p0-d)/f(y|p0) >= 1/alpha."""
    up = down = 1.0
    for n, y in enumerate(sequence):
        up *= ((p0 + delta) if y else (1 - p0 - delta)) / (p0 if y else 1 - p0)
        down *= ((p0 - delta) if y else (1 - p0 + delta)) / (p0 if y else 1 - p0)
        if 0.5 * up + 0.5 * down >= 1 / alpha:
            return n
    return -1


@pytest.mark.parametrize(
    ("heavy", "light"), [("treatment", "control"), ("control", "treatment")], ids=["up", "down"]
)
def test_sequential_srm_known_crossing_of_a_two_to_one_sequence(heavy, light):
    pattern = [heavy, heavy, light] * 250
    df = single_exposures(pattern, seconds_apart=60, seed=3)
    known = _known_crossing([v == "treatment" for v in pattern])
    assert 300 < known < len(pattern)
    got = monitor(df).check_sequential_srm(freq="h")
    assert got["stopped_index"] == known
    assert got["stopped_at"] == START + pd.Timedelta(minutes=known)
    assert_sequential_equal(got, ref.sequential_srm(df, freq="h"))


def test_sequential_srm_known_crossing_all_treatment():
    """LR_n = 0.5 * (1.04^n + 0.96^n) first reaches 100 at n = 136 (index 135)."""
    df = single_exposures(["treatment"] * 200 + ["control"] * 5, seconds_apart=30, seed=4)
    n = next(n for n in range(1, 300) if 0.5 * (1.04**n + 0.96**n) >= 100)
    assert n == 136
    got = monitor(df).check_sequential_srm()
    assert got["stopped_index"] == n - 1


def tie_break_log(unit_kind: str = "int") -> pd.DataFrame:
    """130 treatment units one minute apart, then 20 first exposures at one instant.

    At the tied instant the ten treatment units sort before the ten control units by unit id, so in
    unit-id order the SPRT crosses after six more treatment units (index 135); controls first, it does
    not cross at all. Integer ids: treatment 1000-1009, control 1010-1019. String ids: treatment
    "u100".."u109", control "u11".."u20", which sort the other way round as numbers, so the
    comparison must be the string one. Rows are written control first, so row order is not unit-id
    order either; every tied unit comes back an hour later (a re-exposure that must not count).
    """
    if unit_kind == "int":
        prefix_ids, treated, controls = list(range(130)), list(range(1000, 1010)), list(range(1010, 1020))
    else:
        prefix_ids = [f"p{i:03d}" for i in range(130)]
        treated = [f"u{i}" for i in range(100, 110)]
        controls = [f"u{i}" for i in range(11, 21)]
    ts_prefix = START + pd.to_timedelta(np.arange(130), unit="min")
    prefix = pd.DataFrame({"unit_id": prefix_ids, "variant": "treatment", "ts": ts_prefix})
    tied_at = START + pd.Timedelta(hours=3)
    tied = pd.DataFrame(
        {"unit_id": controls + treated, "variant": ["control"] * 10 + ["treatment"] * 10, "ts": tied_at}
    )
    later = tied.assign(ts=tied_at + pd.Timedelta(hours=1))
    return pd.concat([tied, later, prefix], ignore_index=True)


@pytest.mark.parametrize("unit_kind", ["int", "str"])
def test_sequential_srm_ties_are_broken_by_unit_id(unit_kind):
    df = tie_break_log(unit_kind)
    expected = ref.sequential_srm(df, freq="h")
    assert expected["stopped_index"] == 135
    # The fixture discriminates: with the tie in variant order (controls first) there is no crossing.
    assert ref.sequential_srm(df, freq="h", order=("ts", "variant", "unit"))["stopped_index"] == -1
    got = monitor(df).check_sequential_srm(freq="h")
    assert_sequential_equal(got, expected)
    assert got["stopped_at"] == START + pd.Timedelta(hours=3)


def test_sequential_srm_same_unit_in_both_arms_at_one_instant_orders_by_variant():
    """Pair (unit 7, control) precedes (unit 7, treatment) at the same instant."""
    prefix = single_exposures(["treatment"] * 135, seconds_apart=10, seed=8)
    tied = pd.DataFrame(
        {"unit_id": [7, 7], "variant": ["treatment", "control"], "ts": START + pd.Timedelta(hours=2)}
    )
    df = pd.concat([tied, prefix], ignore_index=True)
    expected = ref.sequential_srm(df, freq="h")
    # 135 treatment units leave LR just short of 100. Control first, then treatment: no crossing;
    # had treatment come first it would have crossed right there, at index 135.
    assert expected["stopped_index"] == -1
    assert _known_crossing([True] * 136) == 135
    got = monitor(df).check_sequential_srm(freq="h")
    assert_sequential_equal(got, expected)


def test_sequential_srm_control_found_by_name_even_when_it_sorts_last():
    df = CASES["control_last"]
    got = monitor(df).check_sequential_srm(target_treatment_ratio=0.7, freq="D")
    assert got["control"] == "b_control"
    assert got["treatment"] == "a_new"
    assert_sequential_equal(got, ref.sequential_srm(df, 0.7, 0.02, 0.01, "D"))


def test_sequential_srm_is_not_run_for_three_arms():
    got = monitor(CASES["three_arm_returning"]).check_sequential_srm()
    assert got["srm_detected"] is False
    assert got["stopped_index"] == -1
    assert "exactly two variants" in got["message"]


# --------------------------------------------------------------------------------------------------
# run_telemetry_checks
# --------------------------------------------------------------------------------------------------


def _ratios_for(df) -> list[float]:
    return [1.0] * df["variant"].nunique()


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("case", list(CASES))
def test_telemetry_alerts_match_reference(case, freq):
    df = CASES[case]
    ratios = _ratios_for(df)
    mon = monitor(df)
    report = telemetry(mon, ratios, freq=freq, window=7, z_threshold=3.0)
    expected = ref.telemetry_alerts(df, ratios, freq=freq, window=7, z_threshold=3.0)
    assert list(report["alerts_triggered"]) == expected
    srm = "SRM_SHUTOFF_TRIGGERED" in expected or "SEQUENTIAL_SRM_TRIGGERED" in expected
    assert report["shutoff_triggered"] is srm
    assert mon.shutoff_triggered is srm
    assert_anomaly_equal(report["traffic_anomaly"], ref.traffic_anomaly(df, freq, 7, 3.0))
    assert_live_srm_equal(report["cumulative_srm"], ref.live_srm(df, ratios))


def test_telemetry_planted_srm_raises_both_srm_alerts_and_sticks():
    df = returning_log(61, ["control", "treatment"], 3000, probs=[0.45, 0.55])
    mon = monitor(df)
    report = telemetry(mon, [1, 1], freq="D")
    assert ref.telemetry_alerts(df, [1, 1], freq="D") == ["SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED"]
    assert list(report.alerts_triggered) == ["SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED"]
    assert report.shutoff_triggered is True
    assert_sequential_equal(report["sequential_srm"], ref.sequential_srm(df, 0.5, 0.02, 0.01, "D"))
    # Against the ratios the data was drawn with nothing fires, but the shutoff stays on.
    again = telemetry(mon, [0.45, 0.55], freq="D")
    assert list(again.alerts_triggered) == ref.telemetry_alerts(df, [0.45, 0.55], freq="D") == []
    assert again.shutoff_triggered is True
    assert mon.shutoff_triggered is True
    assert telemetry(monitor(df), [0.45, 0.55], freq="D").shutoff_triggered is False


def test_telemetry_sequential_alert_alone_triggers_the_shutoff():
    """An early run of treatment crosses the SPRT; the final counts are balanced (no chi-square SRM)."""
    pattern = ["treatment"] * 200 + ["control"] * 200 + ["control", "treatment"] * 300
    df = single_exposures(pattern, seconds_apart=60, seed=9)
    mon = monitor(df)
    report = telemetry(mon, [1, 1], freq="D")
    assert ref.telemetry_alerts(df, [1, 1], freq="D") == ["SEQUENTIAL_SRM_TRIGGERED"]
    assert list(report.alerts_triggered) == ["SEQUENTIAL_SRM_TRIGGERED"]
    assert report.cumulative_srm.p_value == pytest.approx(1.0)
    assert report.sequential_srm.stopped_index == _known_crossing([v == "treatment" for v in pattern]) == 135
    assert report.shutoff_triggered is True
    assert mon.shutoff_triggered is True


def test_telemetry_traffic_drop_alert():
    df = daily_volume_log([100, 104, 97, 101, 99, 103, 98, 102, 100, 12, 60], seed=71)
    report = telemetry(monitor(df), [1, 1], freq="D", window=7, z_threshold=3.0)
    assert ref.telemetry_alerts(df, [1, 1], freq="D") == ["TRAFFIC_DROP_ANOMALY"]
    assert list(report.alerts_triggered) == ["TRAFFIC_DROP_ANOMALY"]
    assert report.shutoff_triggered is False


@pytest.mark.parametrize(
    ("window", "z_threshold", "alerts"),
    [(3, 3.0, ["TRAFFIC_DROP_ANOMALY"]), (7, 3.0, []), (3, 50.0, [])],
)
def test_telemetry_passes_window_and_z_threshold_to_the_anomaly_test(window, z_threshold, alerts):
    """Against the last 3 days the final day is a drop; against the last 7 (or z > 50) it is not."""
    df = daily_volume_log([50, 150, 60, 140, 100, 101, 99, 60, 100], seed=15)
    report = telemetry(monitor(df), [1, 1], freq="D", window=window, z_threshold=z_threshold)
    assert ref.telemetry_alerts(df, [1, 1], freq="D", window=window, z_threshold=z_threshold) == alerts
    assert list(report.alerts_triggered) == alerts
    assert_anomaly_equal(report.traffic_anomaly, ref.traffic_anomaly(df, "D", window, z_threshold))


def test_telemetry_sprt_uses_the_designed_share_of_the_treatment_arm():
    """Control sorts last: the treatment (a_new) share is ratios[0], not the seed's ratios[1]."""
    df = CASES["control_last"]
    report = telemetry(monitor(df), [0.7, 0.3], freq="h")
    assert report["sequential_srm"]["treatment"] == "a_new"
    assert report["sequential_srm"]["target_treatment_ratio"] == pytest.approx(0.7)
    assert_sequential_equal(report["sequential_srm"], ref.sequential_srm(df, 0.7, 0.02, 0.01, "h"))
    assert list(report.alerts_triggered) == ref.telemetry_alerts(df, [0.7, 0.3], freq="h") == []
    # Under the seed's rule p0 would be 0.3 and the SPRT would fire on this healthy log.
    assert ref.sequential_srm(df, 0.3, 0.02, 0.01, "h")["srm_detected"] is True


def test_telemetry_with_dict_ratios_equals_list_ratios():
    df = CASES["control_last"]
    by_list = telemetry(monitor(df), [0.6, 0.4], freq="h")
    by_dict = telemetry(monitor(df), {"b_control": 0.4, "a_new": 0.6}, freq="h")
    assert by_list.alerts_triggered == by_dict.alerts_triggered
    assert by_list.cumulative_srm.p_value == by_dict.cumulative_srm.p_value
    assert by_list.sequential_srm.stopped_index == by_dict.sequential_srm.stopped_index
    assert by_dict.sequential_srm.target_treatment_ratio == pytest.approx(0.6)


def test_telemetry_three_arms_never_raises_the_sequential_alert():
    df = returning_log(81, ["a", "b", "c"], 3000, probs=[0.4, 0.3, 0.3])
    report = telemetry(monitor(df), [1, 1, 1], freq="h")
    assert list(report.alerts_triggered) == ref.telemetry_alerts(df, [1, 1, 1], freq="h")
    assert list(report.alerts_triggered) == ["SRM_SHUTOFF_TRIGGERED"]
    assert report.sequential_srm.srm_detected is False


# --------------------------------------------------------------------------------------------------
# The same data as pandas, polars, Parquet
# --------------------------------------------------------------------------------------------------


def _all_results(mon: xs.LiveMonitor, ratios, freq: str) -> dict:
    return {
        "active": mon.get_binned_traffic(freq=freq),
        "new": mon.get_binned_traffic(freq=freq, count="new"),
        "cumulative": mon.get_cumulative_traffic(freq=freq),
        "anomaly": mon.check_traffic_anomaly(freq=freq, method="zscore").to_dict(),
        "live": mon.check_live_srm(ratios).to_dict(),
        "sequential": mon.check_sequential_srm(freq=freq).to_dict(),
        "alerts": telemetry(mon, ratios, freq=freq).alerts_triggered,
    }


@pytest.mark.parametrize("case", ["ties", "crossover"])
def test_pandas_polars_and_parquet_inputs_give_identical_results(case, tmp_path):
    df = CASES[case]
    path = tmp_path / "exposures.parquet"
    df.to_parquet(path, engine="pyarrow", index=False)
    ratios = _ratios_for(df)
    freq = "h"
    results = {
        "pandas": _all_results(monitor(df), ratios, freq),
        "polars": _all_results(monitor(pl.from_pandas(df)), ratios, freq),
        "parquet": _all_results(monitor(str(path)), ratios, freq),
    }
    base = results["pandas"]
    assert_matrix_equal(base["active"], ref.binned_traffic(df, freq, "active"))
    for name, other in results.items():
        for key in ("active", "new", "cumulative"):
            assert_matrix_equal(other[key], base[key])
        for key in ("anomaly", "live", "sequential", "alerts"):
            assert other[key] == base[key], (name, key)


def test_timezone_aware_timestamps_bin_on_the_same_utc_instants():
    df = CASES["ties"]
    aware = df.assign(ts=df["ts"].dt.tz_localize("UTC").dt.tz_convert("America/New_York"))
    for freq in FREQS:
        assert_matrix_equal(monitor(aware).get_binned_traffic(freq=freq), ref.binned_traffic(df, freq))
    seq = monitor(aware).check_sequential_srm(freq="h")
    assert_sequential_equal(seq, ref.sequential_srm(df, freq="h"))


def test_results_read_as_records_and_as_dicts():
    mon = monitor(CASES["two_arm_returning"])
    live = mon.check_live_srm([1, 1])
    seq = mon.check_sequential_srm()
    anomaly = mon.check_traffic_anomaly()
    for record in (live, seq, anomaly):
        for key in record:
            value = record[key]
            attr = getattr(record, key)
            assert value is attr
    assert dict(live)["p_value"] == live.p_value
    with pytest.raises(KeyError):
        live["no_such_key"]
    assert math.isfinite(live["p_value"])
