"""Property-based tests of LiveMonitor on small random exposure logs (hypothesis).

Logs have up to 60 rows, units 0..15, variants from {"a", "b", "c"} and timestamps within three days
at second resolution; some timestamps are drawn from a few whole hours so that ties are common.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import xpyrment_sql as xs

import reference as ref

START = pd.Timestamp("2024-03-04 00:00:00")
SETTINGS = settings(max_examples=40, deadline=None)

seconds = st.one_of(
    st.integers(0, 3 * 86_400 - 1),
    st.integers(0, 71).map(lambda hour: hour * 3_600),  # exact hour edges: ties and bin boundaries
)
freqs = st.sampled_from(["h", "15min", "D"])


def frame(rows) -> pd.DataFrame:
    unit, variant, offset = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "unit_id": np.asarray(unit, dtype=np.int64),
            "variant": list(variant),
            "ts": START + pd.to_timedelta(np.asarray(offset, dtype=np.int64), unit="s"),
        }
    )


def logs(variants=("a", "b", "c"), min_size: int = 1):
    row = st.tuples(st.integers(0, 15), st.sampled_from(variants), seconds)
    return st.lists(row, min_size=min_size, max_size=60).map(frame)


@st.composite
def shuffled_and_duplicated(draw, variants=("a", "b", "c")):
    """A log, the same rows in another order, and the log with a sample of its rows appended again."""
    df = draw(logs(variants))
    order = draw(st.permutations(range(len(df))))
    picks = draw(st.lists(st.integers(0, len(df) - 1), min_size=1, max_size=len(df)))
    shuffled = df.iloc[list(order)].reset_index(drop=True)
    duplicated = pd.concat([df, df.iloc[picks]], ignore_index=True)
    duplicated = duplicated.sample(frac=1.0, random_state=len(picks)).reset_index(drop=True)
    return df, shuffled, duplicated


def monitor(df: pd.DataFrame) -> xs.LiveMonitor:
    return xs.LiveMonitor(df, time_col="ts")


def same_matrix(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    return (
        list(left.columns) == list(right.columns)
        and np.array_equal(
            pd.DatetimeIndex(left.index).as_unit("ns").asi8, pd.DatetimeIndex(right.index).as_unit("ns").asi8
        )
        and np.array_equal(left.to_numpy(), right.to_numpy())
    )


@SETTINGS
@given(df=logs(), freq=freqs)
def test_last_cumulative_row_is_distinct_units_per_variant(df, freq):
    mon = monitor(df)
    cumulative = mon.get_cumulative_traffic(freq=freq)
    expected = df.groupby("variant")["unit_id"].nunique().sort_index()
    assert list(cumulative.columns) == list(expected.index)
    np.testing.assert_array_equal(cumulative.iloc[-1].to_numpy(), expected.to_numpy())
    assert (np.diff(cumulative.to_numpy(), axis=0) >= 0).all()
    # The anomaly test reads the totals of the active matrix, zero bins included.
    anomaly = mon.check_traffic_anomaly(freq=freq, window=3, method="zscore")
    reference = ref.traffic_anomaly(df, freq, window=3)
    assert anomaly["latest_volume"] == reference["latest_volume"]
    assert anomaly["anomaly_detected"] is reference["anomaly_detected"]
    np.testing.assert_allclose(
        [anomaly[k] for k in ("historical_mean", "historical_std", "z_score")],
        [reference[k] for k in ("historical_mean", "historical_std", "z_score")],
        rtol=1e-12,
        atol=1e-12,
    )


@SETTINGS
@given(df=logs(), freq=freqs)
def test_new_never_exceeds_active_and_sums_to_distinct_pairs(df, freq):
    mon = monitor(df)
    active = mon.get_binned_traffic(freq=freq, count="active")
    new = mon.get_binned_traffic(freq=freq, count="new")
    assert active.index.equals(new.index)
    assert list(active.columns) == list(new.columns)
    assert (new.to_numpy() <= active.to_numpy()).all()
    assert (new.to_numpy() >= 0).all()
    pairs = len(df.drop_duplicates(["variant", "unit_id"]))
    assert int(new.to_numpy().sum()) == pairs
    # Nobody can have been seen before the first bin: there, every active unit is new.
    np.testing.assert_array_equal(new.iloc[0].to_numpy(), active.iloc[0].to_numpy())
    # And both matrices are exactly the pandas reference (full bin range, empty bins as zeros).
    assert same_matrix(active, ref.binned_traffic(df, freq, "active"))
    assert same_matrix(new, ref.binned_traffic(df, freq, "new"))


@SETTINGS
@given(data=shuffled_and_duplicated(), freq=freqs)
def test_traffic_and_chi_square_invariant_to_row_order_and_duplicated_rows(data, freq):
    df, shuffled, duplicated = data
    ratios = [1.0] * df["variant"].nunique()
    base = monitor(df)
    matrix = base.traffic_matrix(freq=freq)
    srm = base.check_live_srm(ratios)
    assert list(srm["observed_counts"]) == ref.live_srm(df, ratios)["observed_counts"]
    np.testing.assert_allclose(srm["p_value"], ref.live_srm(df, ratios)["p_value"], rtol=1e-12)
    for other in (shuffled, duplicated):
        mon = monitor(other)
        other_matrix = mon.traffic_matrix(freq=freq)
        for count in ("active", "new"):
            assert same_matrix(other_matrix.binned(count), matrix.binned(count))
        np.testing.assert_array_equal(other_matrix.binned("active").sum(axis=1), matrix.active.sum(axis=1))
        assert same_matrix(other_matrix.cumulative(), matrix.cumulative())
        other_srm = mon.check_live_srm(ratios)
        assert other_srm["observed_counts"] == srm["observed_counts"]
        np.testing.assert_equal(other_srm["p_value"], srm["p_value"])  # NaN (one variant) == NaN
        assert other_srm["srm_detected"] is srm["srm_detected"]


@SETTINGS
@given(data=shuffled_and_duplicated(variants=("a", "b")))
def test_sprt_invariant_to_row_order_and_duplicates_and_matches_reference(data):
    """Loose parameters (delta=0.3, alpha=0.2) so that short logs often cross; ties are common."""
    df, shuffled, duplicated = data
    params = {"target_treatment_ratio": 0.5, "delta": 0.3, "alpha": 0.2, "freq": "h"}
    if df["variant"].nunique() != 2:
        result = monitor(df).check_sequential_srm(**params)
        assert result["srm_detected"] is False
        assert result["stopped_index"] == -1
        return
    expected = ref.sequential_srm(df, 0.5, 0.3, 0.2, "h")
    both = duplicated.sample(frac=1.0, random_state=len(shuffled)).reset_index(drop=True)
    for other in (df, both):
        result = monitor(other).check_sequential_srm(**params)
        assert result["stopped_index"] == expected["stopped_index"]
        assert result["srm_detected"] is expected["srm_detected"]
        np.testing.assert_allclose(
            result["running_likelihood_ratios"], expected["running_likelihood_ratios"], rtol=1e-9
        )
