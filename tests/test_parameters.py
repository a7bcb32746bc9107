"""Every bad parameter is an XpyrmentError whose message names it and what was expected."""

from __future__ import annotations

import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ParameterError


@pytest.fixture
def monitor(log):
    return xs.LiveMonitor(log, time_col="ts")


@pytest.mark.parametrize(
    ("ratios", "words"),
    [
        ([1, 1, 1], "expected_ratios has 3 value(s) but the data has 2 variant(s): 'control', 'treatment'"),
        ([1, 0], "expected_ratios must be positive numbers"),
        ([1, -2], "expected_ratios must be positive numbers"),
        ({"control": 1, "treatmnt": 1}, "expected_ratios names 'treatmnt' and misses 'treatment'"),
        ({"control": 1}, "misses 'treatment'; the 2 variants in the data are: 'control', 'treatment'"),
        (["x", 1], "expected_ratios must be a list of numbers"),
        ([], "expected_ratios must be positive numbers"),
    ],
)
def test_bad_expected_ratios(monitor, ratios, words):
    for check in (monitor.check_live_srm, monitor.run_telemetry_checks):
        with pytest.raises(ParameterError) as info:
            check(ratios)
        assert words in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"z_threshold": 0}, "z_threshold=0 must be > 0"),
        ({"z_threshold": -1.5}, "z_threshold=-1.5 must be > 0"),
        ({"drop_threshold": 1.0}, "drop_threshold=1.0 must be between 0 and 1"),
        ({"drop_threshold": 0}, "drop_threshold=0 must be between 0 and 1"),
        ({"window": 1}, "window=1 must be an integer >= 2"),
        ({"freq": "fortnight"}, "freq='fortnight' is not a supported bin size"),
    ],
)
def test_bad_anomaly_parameters(monitor, kwargs, words):
    with pytest.raises(ParameterError) as info:
        monitor.check_traffic_anomaly(**kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"target_treatment_ratio": 0.01}, "0 < target_treatment_ratio - delta"),
        (
            {"target_treatment_ratio": 0.5, "delta": 0.5},
            "target_treatment_ratio=0.5 and delta=0.5 must satisfy",
        ),
        ({"delta": 0}, "delta=0 must be > 0"),
        ({"alpha": 1.0}, "alpha=1.0 must be between 0 and 1"),
    ],
)
def test_bad_sprt_parameters(monitor, kwargs, words):
    with pytest.raises(ParameterError) as info:
        monitor.check_sequential_srm(**kwargs)
    assert words in str(info.value)


def test_bad_alpha_and_count(monitor):
    with pytest.raises(ParameterError, match="alpha=0 must be between 0 and 1"):
        monitor.check_live_srm([1, 1], alpha=0)
    with pytest.raises(ParameterError, match="srm_alpha=2 must be between 0 and 1"):
        monitor.run_telemetry_checks([1, 1], srm_alpha=2)
    with pytest.raises(ParameterError, match="count='unique' must be 'active' or 'new'"):
        monitor.get_binned_traffic(count="unique")


def test_parameter_errors_are_raised_before_any_query(monitor, query_log):
    with pytest.raises(ParameterError):
        monitor.run_telemetry_checks([1, 1], z_threshold=-1)
    with pytest.raises(ParameterError):
        monitor.check_live_srm([1, 0])
    assert query_log == []
