"""The fleet's config file: defaults, overrides, and every mistake named by file, experiment and key."""

from __future__ import annotations

import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.config import read_config

GUARDED = "[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\nguardrails = "


def write(tmp_path, text: str):
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def test_defaults_fill_what_an_experiment_does_not_set(tmp_path):
    config = read_config(
        write(
            tmp_path,
            """
[defaults]
freq = "h"
srm_alpha = 0.01
slack = "https://hooks.slack.com/services/T0/B0/x"

[[experiment]]
id = "checkout"
ratios = { control = 1, treatment = 1 }
start = 2026-11-20
end = 2026-12-01T12:00:00+02:00
srm_alpha = 0.0001
webhook = ["https://example.org/a", "https://example.org/b"]

[[experiment]]
id = 42
ratios = { control = 2, a = 1, b = 1 }
control = "control"
sequential_method = "sprt"
""",
        )
    )
    checkout, numbered = config.experiments
    assert checkout.id == "checkout"
    assert checkout.settings.freq == "h"
    assert checkout.settings.srm_alpha == 0.0001, "the experiment's own value wins"
    assert checkout.start == pd.Timestamp("2026-11-20", tz="UTC")
    assert checkout.end == pd.Timestamp("2026-12-01 10:00", tz="UTC")
    assert [kind for kind, _ in checkout.routes] == ["slack", "webhook", "webhook"], "routes add up"
    assert numbered.id == 42
    assert numbered.settings.srm_alpha == 0.01
    assert numbered.settings.sequential_method == "sprt"
    assert numbered.design == xs.Design({"control": 2, "a": 1, "b": 1}, "control")
    assert config.default_design is None
    assert config.for_unlisted("other") is None, "without default ratios, unlisted experiments are not tested"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[experiment]]\nid = 'a'\nratio = { x = 1 }\n", "experiment 'a': unknown key 'ratio'"),
        ("[default]\nfreq = 'h'\n", "the top level: unknown key 'default'"),
        ("[defaults]\nid = 'a'\n", "[defaults]: unknown key 'id'"),
        ("[[experiment]]\nratios = { a = 1, b = 1 }\n", "experiment #1 needs an id"),
        (
            "[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\n[[experiment]]\nid = 'a'\n"
            "ratios = { a = 1, b = 1 }\n",
            "experiment id 'a' is listed twice",
        ),
        ("[[experiment]]\nid = 'a'\n", "experiment 'a': key 'ratios' is missing"),
        ("[[experiment]]\nid = 'a'\nratios = { a = 1, b = -1 }\n", "experiment 'a': key 'ratios'"),
        ("[[experiment]]\nid = 'a'\nratios = [1, 1]\n", "experiment 'a': key 'ratios' must be a table"),
        (
            "[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\nstart = 'next tuesday'\n",
            "experiment 'a': key 'start' is not a date",
        ),
        (
            "[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\nstart = 2026-02-01\nend = 2026-01-01\n",
            "experiment 'a': key 'end' (2026-01-01 00:00:00+00:00) must come after 'start'",
        ),
        ("[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\nfreq = 'fortnight'\n", "'freq'"),
        ("[[experiment]]\nid = 'a'\nratios = { a = 1, b = 1 }\nslack = 3\n", "key 'slack' must be a URL"),
        (
            GUARDED + "3\n",
            "experiment 'a': key 'guardrails' must be a list of tables",
        ),
        (
            GUARDED + "[{ name = 'x', metric = 'median', value_col = 'v' }]\n",
            "experiment 'a': guardrail #1: key 'metric' must be one of mean, proportion, ratio",
        ),
        (
            GUARDED + "[{ name = 'x', metric = 'ratio', numerator_col = 'v' }]\n",
            "experiment 'a': guardrail #1: key 'denominator_col' is missing",
        ),
        (
            GUARDED + "[{ name = 'x', metric = 'mean', value_col = 'v', margin = 0.1 }]\n",
            "experiment 'a': guardrail #1: unknown key 'margin'",
        ),
        (
            GUARDED + "[{ name = 'x', metric = 'mean', value_col = 'v', direction = 'up' }]\n",
            "experiment 'a': guardrail #1 ('x'): direction='up' must be one of",
        ),
        (
            GUARDED + "[{ name = 'x', metric = 'mean', value_col = 'v' }, "
            "{ name = 'x', metric = 'proportion', value_col = 'w' }]\n",
            "experiment 'a': key 'guardrails': the name(s) ['x'] are used more than once",
        ),
        ("[[experiment]\nid = 'a'\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_names_the_file_the_experiment_and_the_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(xs.ConfigError) as caught:
        read_config(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(xs.ConfigError, match=r"config file '.*nowhere.toml' cannot be read"):
        read_config(tmp_path / "nowhere.toml")


def test_guardrails_are_read_per_experiment_with_defaults(tmp_path):
    config = read_config(
        write(
            tmp_path,
            """
[defaults]
ratios = { control = 1, treatment = 1 }
guardrails = [{ name = "Latency", metric = "mean", value_col = "load_ms" }]

[[experiment]]
id = "checkout"

[[experiment.guardrails]]
name = "Orders per session"
metric = "ratio"
numerator_col = "orders"
denominator_col = "sessions"
direction = "decrease"
method = "ci"
max_allowed_change = 0.05

[[experiment.guardrails]]
name = "Errors"
metric = "proportion"
value_col = "failed"
shutoff = true

[[experiment]]
id = "search"
""",
        )
    )
    checkout, search = config.experiments
    orders, errors = checkout.guardrails
    assert orders == xs.GuardrailMetric(
        xs.RatioMetric("Orders per session", "orders", "sessions"),
        max_allowed_change=0.05,
        direction="decrease",
        method="ci",
    )
    assert errors == xs.GuardrailMetric(xs.ProportionMetric("Errors", "failed"), shutoff=True)
    latency = xs.GuardrailMetric(xs.MeanMetric("Latency", "load_ms"))
    assert search.guardrails == (latency,), "[defaults] guardrails fill in"
    assert config.for_unlisted("other").guardrails == (latency,)
