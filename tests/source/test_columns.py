"""Column roles: named columns exist, no column plays two roles, and the unit column's rule."""

from __future__ import annotations

import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ColumnError
from xpyrment_sql.source import open_source


@pytest.mark.parametrize(
    ("columns", "kwargs", "unit_col", "rule"),
    [
        (["ts", "unit_id", "variant"], {}, "unit_id", "unit_id"),
        (["ts", "variant", "user"], {}, "user", "first other column"),
        (["variant", "ts", "user", "unit"], {}, "user", "first other column"),
        (["ts", "user", "unit_id"], {"variant_col": "unit_id"}, "user", "first other column"),
        (["ts", "user", "variant"], {"unit_col": "user"}, "user", "given"),
    ],
)
def test_unit_col_is_unit_id_then_the_first_column_that_is_not_time_or_variant(
    log, columns, kwargs, unit_col, rule
):
    frame = log.assign(user=log.unit_id, unit=log.unit_id)[columns]
    source = xs.LiveMonitor(frame, time_col="ts", **kwargs).source
    assert (source.unit_col, source.unit_rule) == (unit_col, rule)
    assert source.unit_rule_text == xs.source.UNIT_RULES[rule]


def test_the_first_other_column_rule_is_said_in_words(log):
    renamed = log.rename(columns={"unit_id": "user_id"})[["ts", "user_id", "variant"]]
    source = xs.LiveMonitor(renamed, time_col="ts").source
    assert f"{source.unit_col} ({source.unit_rule_text})" == (
        "user_id (first column that is not the time or variant column)"
    )
    binned = xs.LiveMonitor(renamed, time_col="ts").get_cumulative_traffic(freq="D")
    assert binned.iloc[-1].sum() == log.unit_id.nunique(), "units, not rows"


@pytest.mark.parametrize(
    ("columns", "kwargs", "words"),
    [
        (["ts", "variant"], {}, "no column can be the unit column: the data has only ts, variant"),
        (["unit_id", "variant", "ts"], {"unit_col": "ts"}, "unit_col='ts' is also time_col"),
        (["unit_id", "variant", "ts"], {"unit_col": "variant"}, "unit_col='variant' is also variant_col"),
        (["unit_id", "variant", "ts"], {"variant_col": "ts"}, "variant_col='ts' is also time_col"),
    ],
)
def test_a_column_never_plays_two_roles(log, columns, kwargs, words):
    with pytest.raises(ColumnError) as info:
        xs.LiveMonitor(log[columns], time_col="ts", **kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"time_col": "when"},
            "time_col='when' is not a column of the data; columns are: unit_id, variant, ts",
        ),
        ({"time_col": "ts", "unit_col": "user"}, "unit_col='user' is not a column"),
        ({"time_col": "ts", "variant_col": "arm"}, "variant_col='arm' is not a column"),
        ({"time_col": "unit_id"}, "time_col='unit_id' has type int64; expected TIMESTAMP"),
    ],
)
def test_bad_columns_name_the_column_and_the_expectation(log, kwargs, words):
    with pytest.raises(ColumnError) as info:
        xs.LiveMonitor(log, **kwargs)
    assert words in str(info.value)
    assert isinstance(info.value, xs.XpyrmentError)
    assert isinstance(info.value, ValueError)


def test_a_method_variant_col_is_checked_against_the_schema(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    with pytest.raises(ColumnError, match="variant_col='arm' is not a column"):
        monitor.get_binned_traffic(variant_col="arm")


@pytest.mark.parametrize(
    ("columns", "kwargs", "unit_col"),
    [
        (["ts", "variant", "user"], {}, "ts"),
        (["variant", "user", "unit_id"], {}, "unit_id"),
        (["ts", "arm", "variant"], {"variant_col": "arm"}, "ts"),
    ],
)
def test_without_a_time_column_only_the_variant_column_is_never_the_unit(log, columns, kwargs, unit_col):
    frame = log.assign(user=log.unit_id, arm=log.variant)[columns]
    assert open_source(frame, time_col=None, **kwargs).unit_col == unit_col


def test_without_a_time_column_the_unit_column_still_cannot_be_the_variant(log):
    with pytest.raises(ColumnError, match="unit_col='variant' is also variant_col"):
        open_source(log, time_col=None, unit_col="variant")
    with pytest.raises(ColumnError, match="the data has only variant, which is variant_col='variant'; add"):
        open_source(log[["variant"]], time_col=None)
