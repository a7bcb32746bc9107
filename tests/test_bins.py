"""Bins: aliases, week starts, local midnight across daylight-saving changes, empty bins, ``until``."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.bins import parse_freq, utc_offsets
from xpyrment_sql.errors import ParameterError


@pytest.mark.parametrize(
    ("alias", "seconds"),
    [("min", 60), ("15min", 900), ("h", 3600), ("H", 3600), ("6h", 21600), ("D", 86400), ("W", 604800)],
)
def test_aliases_give_their_width(alias, seconds):
    assert parse_freq(alias).width == seconds


@pytest.mark.parametrize("alias", ["2D", "M", "hour", "", "0h", 5])
def test_unknown_aliases_are_errors_naming_freq(alias):
    with pytest.raises(ParameterError, match=r"freq=.* is not a supported bin size"):
        parse_freq(alias)


def test_unknown_time_zone_is_an_error():
    with pytest.raises(ParameterError, match="tz='Mars/Olympus' is not a known IANA time zone"):
        parse_freq("D", "Mars/Olympus")


def frame(stamps: list[str], variants: list[str] | None = None) -> pd.DataFrame:
    variants = variants or ["a"] * len(stamps)
    return pd.DataFrame({"unit_id": range(len(stamps)), "variant": variants, "ts": pd.to_datetime(stamps)})


def test_week_bins_start_on_monday():
    stamps = ["2026-01-04 23:59", "2026-01-05 00:00", "2026-01-11 12:00", "2026-01-12 00:00"]
    binned = xs.LiveMonitor(frame(stamps), time_col="ts").get_binned_traffic(freq="W")
    assert list(binned.index) == [
        pd.Timestamp("2025-12-29"),
        pd.Timestamp("2026-01-05"),
        pd.Timestamp("2026-01-12"),
    ]
    assert all(day.day_of_week == 0 for day in binned.index)
    assert binned["a"].tolist() == [1, 2, 1]


def test_fifteen_minute_bins_and_empty_bins_inside_the_range_are_zero():
    stamps = ["2026-01-05 00:01", "2026-01-05 00:14", "2026-01-05 01:20"]
    binned = xs.LiveMonitor(frame(stamps), time_col="ts").get_binned_traffic(freq="15min")
    assert len(binned) == 6
    assert binned["a"].tolist() == [2, 0, 0, 0, 0, 1]
    assert binned.index[-1] == pd.Timestamp("2026-01-05 01:15")


def test_day_bins_follow_local_midnight_across_daylight_saving_changes():
    rng = np.random.default_rng(3)
    seconds = rng.integers(0, 20 * 86400, 2000)
    utc = pd.Timestamp("2026-03-20") + pd.to_timedelta(seconds, unit="s")
    log = pd.DataFrame({"unit_id": np.arange(2000), "variant": "a", "ts": utc})
    tz = "Europe/Berlin"
    binned = xs.LiveMonitor(log, time_col="ts", tz=tz).get_binned_traffic(freq="D")
    local_day = log.ts.dt.tz_localize("UTC").dt.tz_convert(tz).dt.normalize()
    expected = local_day.value_counts().sort_index()
    assert list(binned.index) == list(expected.index)
    assert binned["a"].tolist() == expected.tolist()
    assert pd.Timestamp("2026-03-29", tz=tz) in binned.index


def test_sub_daily_bins_with_a_zone_are_absolute_hours_shown_in_local_time():
    stamps = ["2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"]
    binned = xs.LiveMonitor(frame(stamps), time_col="ts", tz="Europe/Berlin").get_binned_traffic(freq="h")
    assert binned["a"].tolist() == [1, 1, 1]
    assert [t.isoformat() for t in binned.index] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_offset_steps_match_zoneinfo(tz):
    steps = utc_offsets(tz, pd.Timestamp("2027-01-01"))
    since = np.array([s for s, _ in steps])
    zone = zoneinfo.ZoneInfo(tz)
    rng = np.random.default_rng(0)
    for epoch in rng.integers(0, 1_798_000_000, 300):
        offset = steps[int(np.searchsorted(since, epoch, side="right")) - 1][1]
        when = dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).astimezone(zone)
        assert offset == when.utcoffset().total_seconds()


def test_until_adds_trailing_empty_bins_and_ignores_later_rows():
    stamps = ["2026-01-05 00:10", "2026-01-05 01:10", "2026-01-05 02:10", "2026-01-05 09:00"]
    monitor = xs.LiveMonitor(frame(stamps), time_col="ts", until="2026-01-05 05:30")
    binned = monitor.get_binned_traffic(freq="h")
    assert binned.index[-1] == pd.Timestamp("2026-01-05 05:00")
    assert binned["a"].tolist() == [1, 1, 1, 0, 0, 0]


def test_an_outage_still_going_on_is_flagged_through_until():
    hours = pd.date_range("2026-01-05", periods=48, freq="h")
    stamps = [str(h + pd.Timedelta(minutes=m)) for h in hours for m in range(0, 60, 2)]
    log = frame(stamps)
    without = xs.LiveMonitor(log, time_col="ts").check_traffic_anomaly(freq="h")
    with_until = xs.LiveMonitor(log, time_col="ts", until="2026-01-07 02:30").check_traffic_anomaly(freq="h")
    assert not without["anomaly_detected"]
    assert with_until["anomaly_detected"]
    assert with_until["latest_volume"] == 0.0
    assert with_until.judged_bin == pd.Timestamp("2026-01-07 01:00")


def test_until_must_be_a_timestamp(log):
    with pytest.raises(ParameterError, match="until='next tuesday' is not a timestamp"):
        xs.LiveMonitor(log, time_col="ts", until="next tuesday")
