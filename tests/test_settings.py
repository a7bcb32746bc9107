"""The run's two records: every bad value is refused at construction, naming the parameter."""

from __future__ import annotations

import dataclasses

import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ParameterError

from conftest import make_log


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"freq": "fortnight"}, "freq='fortnight' is not a supported bin size"),
        ({"drop_method": "ewma"}, "method"),
        ({"window": 1}, "window=1 must be an integer >= 2"),
        ({"z_threshold": 0}, "z_threshold=0 must be > 0"),
        ({"drop_threshold": 1.0}, "drop_threshold=1.0 must be between 0 and 1"),
        ({"srm_alpha": 2}, "srm_alpha"),
        ({"sequential_alpha": 0}, "sequential_alpha"),
        ({"sequential_method": "bayes"}, "'bayes' must be 'anytime', 'changepoint' or 'sprt'"),
        ({"concentration": -1}, "concentration"),
        ({"min_units": -1}, "min_units"),
        ({"max_multiple_exposure_share": 1.5}, "max_multiple_exposure_share=1.5 must be a share"),
    ],
)
def test_bad_settings_are_refused_naming_the_parameter(kwargs, words):
    with pytest.raises(ParameterError, match=words.replace("(", r"\(").replace("[", r"\[")):
        xs.CheckSettings(**kwargs)


@pytest.mark.parametrize(
    "ratios", [[], [1, 0], {"control": -1, "treatment": 1}, ["a", "b"], [1, float("nan")]]
)
def test_a_design_refuses_ratios_that_are_not_positive_numbers(ratios):
    with pytest.raises(ParameterError, match="expected_ratios must be"):
        xs.Design(ratios)


def test_records_are_frozen():
    settings = xs.CheckSettings(freq="h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.freq = "D"


def test_run_with_the_records_is_run_telemetry_checks():
    log = make_log(units=800, rows=6000, days=4)
    by_keywords = xs.LiveMonitor(log, time_col="ts").run_telemetry_checks(
        {"control": 1, "treatment": 1}, freq="h", srm_alpha=0.01, drop_method="zscore"
    )
    by_records = xs.LiveMonitor(log, time_col="ts").run(
        xs.Design({"control": 1, "treatment": 1}),
        xs.CheckSettings(freq="h", srm_alpha=0.01, drop_method="zscore"),
    )
    assert by_records.to_dict() == by_keywords.to_dict()
