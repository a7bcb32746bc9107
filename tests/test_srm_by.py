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


def test_contributions_add_up_to_the_overall_chi_square(log, result):
    counts = reference_counts(log).to_numpy().sum(axis=0)
    overall = stats.chisquare(counts, counts.sum() * np.array([0.5, 0.5]))
    assert result.overall_chi_square == pytest.approx(overall.statistic, rel=1e-9)
    assert result.overall_p_value == pytest.approx(overall.pvalue, rel=1e-9)
    assert result.table.contribution.sum() == pytest.approx(overall.statistic, rel=1e-9)
    assert result.table.contribution_share.iloc[0] > 0.5
    assert list(result.table.contribution) == sorted(result.table.contribution, reverse=True)


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
