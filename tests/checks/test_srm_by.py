"""SRM per segment: chi-square per segment against scipy, Bonferroni, contributions, small segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import xpyrment_sql as xs
from xpyrment_sql.errors import ColumnError, ParameterError
from xpyrment_sql.stats.segment_srm import segment_srm


def segmented_log(seed: int = 0) -> pd.DataFrame:
    """Units split 50/50 over platform x version; Android 5.2 loses a fifth of its treatment units.

    Three units are on a rare "tv" platform, and some rows have no version.
    """
    rng = np.random.default_rng(seed)
    n = 12_000
    units = pd.DataFrame(
        {
            "unit_id": np.arange(n),
            "variant": rng.choice(["control", "treatment"], n),
            "platform": rng.choice(["android", "ios", "web"], n, p=[0.4, 0.4, 0.2]),
            "version": rng.choice(["5.1", "5.2", None], n, p=[0.45, 0.45, 0.1]),
        }
    )
    units.loc[:2, "platform"] = "tv"
    lost = (
        (units.platform == "android")
        & (units.version == "5.2")
        & (units.variant == "treatment")
        & (rng.random(n) < 0.2)
    )
    units = units[~lost]
    rows = units.loc[units.index.repeat(rng.integers(1, 4, len(units)))]
    seconds = rng.integers(0, 3 * 86_400, len(rows))
    return rows.assign(ts=pd.Timestamp("2026-02-02") + pd.to_timedelta(seconds, unit="s"))


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return segmented_log()


@pytest.fixture(scope="module")
def result(log):
    return xs.LiveMonitor(log, time_col="ts").check_srm_by(["platform", "version"], [1, 1])


def reference_counts(log: pd.DataFrame) -> pd.DataFrame:
    """Distinct units per segment label and variant, in pandas (a missing version is "None")."""
    label = "platform=" + log.platform + ", version=" + log.version.fillna("None")
    return log.assign(segment=label).groupby(["segment", "variant"]).unit_id.nunique().unstack(fill_value=0)


def test_the_lossy_segment_ranks_first_and_is_the_only_one_flagged(result):
    top = result.table.iloc[0]
    assert (top.platform, top.version) == ("android", "5.2")
    assert top.segment == "platform=android, version=5.2"
    assert top.excess_treatment < -100
    assert result.table.srm_detected.tolist() == [True] + [False] * (len(result.table) - 1)
    assert result.srm_detected
    assert "platform=android, version=5.2" in result.message
    assert result["tested_segments"] == result.tested_segments


def test_each_segment_matches_scipy_with_a_bonferroni_correction(log, result):
    counts = reference_counts(log)
    tested = result.table[result.table.tested & (result.table.segment != "(other)")]
    assert result.tested_segments == len(tested) == 9
    for row in tested.itertuples():
        observed = counts.loc[row.segment].to_numpy()
        scipy = stats.chisquare(observed, observed.sum() * np.array([0.5, 0.5]))
        assert row.chi_square == pytest.approx(scipy.statistic, rel=1e-10)
        assert row.p_value == pytest.approx(scipy.pvalue, rel=1e-10)
        assert row.adjusted_p_value == pytest.approx(min(1.0, scipy.pvalue * 9), rel=1e-10)
        assert row.units == observed.sum()


def test_missing_dimension_values_form_their_own_segment(result):
    assert "platform=ios, version=None" in set(result.table.segment)


def test_contribution_shares_are_each_segments_share_of_the_chi_square(result):
    tested = result.table[result.table.tested]
    by_hand = tested.chi_square / tested.chi_square.sum()
    np.testing.assert_allclose(tested.contribution_share, by_hand, rtol=1e-12)
    assert (tested.contribution_share >= 0).all()
    assert tested.contribution_share.sum() == pytest.approx(1.0, rel=1e-12)
    assert tested.contribution_share.iloc[0] > 0.5
    assert list(tested.chi_square) == sorted(tested.chi_square, reverse=True)
    assert result.table[~result.table.tested].contribution_share.isna().all()
    assert f"{tested.contribution_share.iloc[0]:.0%}" in result.message


def test_contribution_shares_of_a_small_table_by_hand():
    counts = np.array([[520, 480], [300, 300], [90, 110]])
    got = segment_srm(counts, [("a",), ("b",), ("c",)], ["shop"], ("x", "y"), [1, 1], alpha=0.05)
    chi = {"shop=a": 20**2 / 500 * 2, "shop=b": 0.0, "shop=c": 10**2 / 100 * 2}
    total = sum(chi.values())
    assert dict(zip(got.table.segment, got.table.chi_square, strict=True)) == pytest.approx(chi)
    shares = dict(zip(got.table.segment, got.table.contribution_share, strict=True))
    assert shares == pytest.approx({name: value / total for name, value in chi.items()}, rel=1e-12)
    assert list(got.table.segment) == ["shop=c", "shop=a", "shop=b"], "ranked by chi-square"


def test_the_overall_test_counts_distinct_units_like_check_live_srm():
    """Units that change platform count once in each platform but once overall."""
    log = segmented_log(2)
    movers = log.unit_id.isin(log.unit_id.unique()[: len(log.unit_id.unique()) // 3])
    log = log.assign(platform=np.where(movers & (log.ts.dt.hour % 2 == 0), "web", log.platform))
    monitor = xs.LiveMonitor(log, time_col="ts")
    result = monitor.check_srm_by(["platform", "version"], [1, 1])
    live = monitor.check_live_srm([1, 1])
    counts = log.groupby("variant").unit_id.nunique()
    assert result.overall_units == tuple(counts[["control", "treatment"]]) == live.observed_counts
    assert result.overall_chi_square == pytest.approx(live.chi_square, rel=1e-12)
    assert result.overall_p_value == pytest.approx(live.p_value, rel=1e-12)
    scipy = stats.chisquare(counts.to_numpy(), counts.sum() * np.array([0.5, 0.5]))
    assert result.overall_p_value == pytest.approx(scipy.pvalue, rel=1e-12)
    assert result.table.units.sum() > counts.sum(), "units in two segments count in each segment"
    assert f"p = {live.p_value:.4g}" in result.message


def page_log(seed: int = 3) -> pd.DataFrame:
    """Every unit sees the home page; control units see ``old_checkout``, treatment ``new_checkout``."""
    log = segmented_log(seed)
    checkout = np.where(log.variant == "control", "old_checkout", "new_checkout")
    return log.assign(page=np.where(log.unit_id % 2 == 0, checkout, "checkout_" + log.variant))


def test_a_segment_column_the_variant_decides_is_reported_as_post_assignment(query_log):
    log = page_log()
    result = xs.LiveMonitor(log, time_col="ts").check_srm_by("page", [1, 1])
    assert result.post_assignment_dimensions == ("page",)
    assert not result.srm_detected
    assert result.tested_segments == 0
    assert not result.table.srm_detected.any()
    assert result.table.chi_square.min() > 1000, "each page holds one arm"
    assert result.message.startswith(
        "Segment column 'page' is decided by the variant (post-assignment): its segments each hold "
        "one arm, so a per-segment SRM test does not apply."
    )
    assert len(query_log) == 1


def test_post_assignment_is_judged_per_dimension_in_one_query(query_log):
    log = page_log()
    result = xs.LiveMonitor(log, time_col="ts").check_srm_by(["platform", "page"], [1, 1])
    assert result.post_assignment_dimensions == ("page",)
    assert not result.srm_detected
    assert "Segment by 'platform' without it." in result.message
    assert len(query_log) == 1
    assert query_log[0].count("UNION ALL") >= 3, "segments, overall and each dimension"


def test_segments_missing_one_arm_each_on_one_value_only_is_an_srm_not_post_assignment():
    counts = np.array([[500, 0], [480, 520], [510, 490]])
    got = segment_srm(counts, [("web",), ("ios",), ("android",)], ["platform"], ("a", "b"), [1, 1])
    assert got.post_assignment_dimensions == ()
    assert got.srm_detected
    assert got.table.iloc[0].segment == "platform=web"


def test_one_arm_missing_everywhere_is_an_srm_not_post_assignment():
    counts = np.array([[500, 0], [480, 1], [510, 2]])
    got = segment_srm(counts, [("web",), ("ios",), ("android",)], ["platform"], ("a", "b"), [1, 1])
    assert got.post_assignment_dimensions == ()
    assert got.srm_detected


def test_small_segments_are_pooled_and_the_pool_skipped_when_too_small(result):
    tv = {s for s in result.pooled_segments if s.startswith("platform=tv")}
    assert tv
    assert tv == set(result.pooled_segments)
    assert result.skipped_segments == result.pooled_segments, "three units cannot be tested even pooled"
    other = result.table[result.table.segment == "(other)"].iloc[0]
    assert not other.tested
    assert np.isnan(other.p_value)


def test_a_large_enough_pool_is_tested_as_one_segment():
    counts = np.array([[600, 400], [6, 3], [5, 9], [7, 4]])
    segments = [("big",), ("s1",), ("s2",), ("s3",)]
    got = segment_srm(counts, segments, ["shop"], ("a", "b"), [1, 1], alpha=0.05, min_expected_units=10)
    assert got.pooled_segments == ("shop=s1", "shop=s2", "shop=s3")
    assert got.skipped_segments == ()
    assert got.tested_segments == 2
    pool = got.table[got.table.segment == "(other)"].iloc[0]
    assert pool.units == 34
    scipy = stats.chisquare([18, 16], [17, 17])
    assert pool.p_value == pytest.approx(scipy.pvalue, rel=1e-10)
    assert pool.adjusted_p_value == pytest.approx(min(1, 2 * scipy.pvalue), rel=1e-10)


def test_a_segment_missing_an_arm_counts_it_as_zero():
    log = segmented_log(1)
    log = log[~((log.platform == "web") & (log.variant == "treatment"))]
    result = xs.LiveMonitor(log, time_col="ts").check_srm_by("platform", {"control": 1, "treatment": 1})
    web = result.table[result.table.platform == "web"].iloc[0]
    assert web.srm_detected
    assert web.excess_control == pytest.approx(web.units / 2)
    assert result.table.iloc[0].platform == "web"


def test_one_grouped_query(log, query_log):
    xs.LiveMonitor(log, time_col="ts").check_srm_by("platform", [1, 1])
    assert len(query_log) == 1
    assert "GROUP BY" in query_log[0]
    assert query_log[0].count("UNION ALL") == 1, "segment counts and distinct units per variant"


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"dimension_cols": ["platform", "os"]}, ColumnError, "dimension_cols='os' is not a column"),
        ({"dimension_cols": []}, ParameterError, "dimension_cols must name at least one column"),
        ({"dimension_cols": "variant"}, ParameterError, "dimension_cols='variant' is the variant column"),
        ({"dimension_cols": "unit_id"}, ParameterError, "dimension_cols='unit_id' is the unit column"),
        ({"dimension_cols": ["platform", "platform"]}, ParameterError, "names a column twice"),
        ({"dimension_cols": "platform", "alpha": 0}, ParameterError, "alpha=0 must be between 0 and 1"),
        (
            {"dimension_cols": "platform", "min_expected_units": 0},
            ParameterError,
            "min_expected_units=0 must be a number > 0",
        ),
    ],
)
def test_bad_inputs(log, query_log, kwargs, error, words):
    monitor = xs.LiveMonitor(log, time_col="ts")
    with pytest.raises(error) as info:
        monitor.check_srm_by(expected_ratios=[1, 1], **kwargs)
    assert words in str(info.value)
    assert query_log == []
