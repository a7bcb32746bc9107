"""check_all: every experiment of one table, one query, each experiment as its own monitor would see it."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import ibis
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from browser import open_in_chromium
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpyrment_sql as xs
from xpyrment_sql.checks import incremental
from xpyrment_sql.cli.main import main
from xpyrment_sql.config import read_config
from xpyrment_sql.reporting.fleet import format_fleet, write_fleet_report
from xpyrment_sql.state import StateMismatchError

from conftest import make_log

START = pd.Timestamp("2026-01-05")


def fleet_log() -> pd.DataFrame:
    """Three experiments in one table, sizes 10x apart; ``search`` loses a third of arm ``b``'s units
    (an SRM); ``legacy`` is in the data only; unit ids overlap between experiments on purpose."""
    checkout = make_log(units=2_000, rows=12_000, days=4, seed=1).assign(experiment="checkout")
    search = make_log(units=600, rows=4_000, days=4, variants=("a", "b", "control"), seed=2)
    search = search[~((search.variant == "b") & (search.unit_id // 3 % 3 == 0))].assign(experiment="search")
    legacy = make_log(units=200, rows=1_200, days=4, seed=3).assign(experiment="legacy")
    return pd.concat([checkout, search, legacy], ignore_index=True)


CONFIG = """
[defaults]
freq = "h"

[[experiment]]
id = "checkout"
ratios = { control = 1, treatment = 1 }

[[experiment]]
id = "search"
ratios = { control = 2, a = 1, b = 1 }
start = 2026-01-06
"""


def after(log: pd.DataFrame) -> pd.Timestamp:
    """Where a fleet run without ``until`` evaluates every experiment: just after the table's latest
    exposure (so a single monitor of one experiment's rows counts the same rows on the same bins)."""
    return log.ts.max().tz_localize("UTC") + pd.Timedelta(microseconds=1)


def comparable(report: xs.TelemetryReport) -> dict:
    data = report.to_dict()
    data.pop("state")
    data.pop("dispatches")
    return data


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "experiments.toml"
    path.write_text(CONFIG)
    return path


def test_each_experiment_gets_what_its_own_monitor_gives_from_one_query(config, query_log):
    log = fleet_log()
    query_log.clear()
    fleet = xs.LiveMonitor(log, time_col="ts").check_all(config, experiment_col="experiment")
    assert len(query_log) == 1, "one query for every experiment"
    assert fleet.queries == 1
    for experiment, ratios, start in (
        ("checkout", {"control": 1, "treatment": 1}, None),
        ("search", {"control": 2, "a": 1, "b": 1}, pd.Timestamp("2026-01-06")),
    ):
        rows = log[log.experiment == experiment].drop(columns="experiment")
        if start is not None:
            rows = rows[rows.ts >= start]
        alone = xs.LiveMonitor(rows, time_col="ts", until=after(log)).run_telemetry_checks(ratios, freq="h")
        status = fleet[experiment]
        assert comparable(status.report) == comparable(alone)
        assert status.units == rows.unit_id.nunique(), "units counted within the experiment only"
        assert status.last_seen == rows.ts.max().tz_localize("UTC")


def test_an_experiment_whose_traffic_stopped_is_judged_at_the_tables_latest_exposure(tmp_path):
    """Without ``until``, checkout's traffic stopping at 22:00 while the table fills until midnight is
    a drop in the 22:00 bin, not an experiment evaluated at its own last row (21:59, no drop)."""
    path = tmp_path / "fleet.toml"
    path.write_text(CONFIG)
    log = fleet_log()
    stop = START + pd.Timedelta(days=3, hours=22)
    stopped = log[(log.experiment != "checkout") | (log.ts < stop)]
    fleet = xs.LiveMonitor(stopped, time_col="ts").check_all(path, "experiment")
    checkout = fleet["checkout"]
    assert checkout.last_seen < stop.tz_localize("UTC")
    assert "TRAFFIC_DROP_ANOMALY" in checkout.alerts
    drop = checkout.report.traffic_anomaly
    assert drop.judged_bin == stop
    assert drop.latest_volume == 0
    own = stopped[stopped.experiment == "checkout"].drop(columns="experiment")
    alone = xs.LiveMonitor(own, time_col="ts").run_telemetry_checks({"control": 1, "treatment": 1}, freq="h")
    assert "TRAFFIC_DROP_ANOMALY" not in alone.alerts_triggered, "its own last row hides the stop"


def test_statuses_are_sorted_by_severity_and_the_unconfigured_are_listed(config):
    fleet = xs.LiveMonitor(fleet_log(), time_col="ts").check_all(config, "experiment")
    assert [(s.experiment, s.status) for s in fleet.experiments] == [
        ("search", "shutoff"),
        ("checkout", "healthy"),
        ("legacy", "unconfigured"),
    ]
    assert fleet.alerting
    legacy = fleet["legacy"]
    assert legacy.report is None
    assert legacy.units == fleet_log().query("experiment == 'legacy'").unit_id.nunique()


def test_a_default_split_tests_the_unconfigured_too(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[defaults]\nfreq = "h"\nratios = { control = 1, treatment = 1 }\n')
    log = fleet_log()
    fleet = xs.LiveMonitor(log[log.experiment != "search"], time_col="ts").check_all(path, "experiment")
    legacy = log[log.experiment == "legacy"].drop(columns="experiment")
    alone = xs.LiveMonitor(
        legacy, time_col="ts", until=after(log[log.experiment != "search"])
    ).run_telemetry_checks([1, 1], freq="h")
    assert comparable(fleet["legacy"].report) == comparable(alone)
    assert {s.status for s in fleet.experiments} == {"healthy"}


def test_a_configured_experiment_without_rows_since_its_start_raises_no_traffic(tmp_path, query_log):
    path = tmp_path / "fleet.toml"
    path.write_text(
        CONFIG + '\n[[experiment]]\nid = "checkout-v2"\nratios = { control = 1, treatment = 1 }\n'
        '\n[[experiment]]\nid = "late"\nfreq = "D"\nratios = { control = 1, treatment = 1 }\n'
        "start = 2026-02-01\n"
    )
    log = fleet_log()
    log.loc[log.experiment == "legacy", "experiment"] = "late"
    query_log.clear()
    fleet = xs.LiveMonitor(log, time_col="ts").check_all(path, "experiment")
    assert len(query_log) == 2, "one query per bin size"
    names = [status.experiment for status in fleet.experiments]
    assert sorted(names) == ["checkout", "checkout-v2", "late", "search"], "each once, in its own query"
    for name in ("checkout-v2", "late"):
        assert fleet[name].status == "no traffic"
        assert fleet[name].alerts == ("NO_TRAFFIC",)


def test_the_seeds_sprt_per_experiment_matches_a_single_run(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[defaults]\nfreq = "h"\nsequential_method = "sprt"\n'
        '[[experiment]]\nid = "checkout"\nratios = { control = 1, treatment = 1 }\n'
        '[[experiment]]\nid = "small"\nratios = { control = 1, treatment = 3 }\n'
    )
    checkout = make_log(units=3_000, rows=12_000, days=3, seed=5)
    checkout = checkout[~((checkout.variant == "treatment") & (checkout.unit_id // 2 % 3 == 0))]
    small = make_log(units=800, rows=3_000, days=3, seed=6)
    small = small[(small.variant == "treatment") | (small.unit_id % 3 == 0)]
    log = pd.concat([checkout.assign(experiment="checkout"), small.assign(experiment="small")])
    fleet = xs.LiveMonitor(log, time_col="ts").check_all(path, "experiment")
    for name, rows, ratios in (("checkout", checkout, [1, 1]), ("small", small, [1, 3])):
        alone = xs.LiveMonitor(rows, time_col="ts", until=after(log)).run_telemetry_checks(
            ratios, freq="h", sequential_method="sprt"
        )
        assert comparable(fleet[name].report) == comparable(alone)
    assert fleet["checkout"].report.sequential_srm.stopped_index >= 0, "the SPRT crossed in the fleet query"


def test_integer_experiment_ids(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[experiment]]\nid = 7\nfreq = "h"\nratios = { control = 1, treatment = 1 }\n')
    log = make_log(seed=4).assign(experiment=np.int64(7))
    fleet = xs.LiveMonitor(log, time_col="ts").check_all(path, "experiment")
    assert fleet[7].status == "healthy"
    path.write_text('[[experiment]]\nid = "seven"\nratios = { control = 1, treatment = 1 }\n')
    with pytest.raises(xs.ConfigError, match=r"fleet.toml: experiment 'seven': key 'id' must be an integer"):
        xs.LiveMonitor(log, time_col="ts").check_all(path, "experiment")


def test_ratios_that_do_not_name_the_datas_variants_are_a_config_error(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[experiment]]\nid = "checkout"\nratios = { control = 1, treatmnt = 1 }\n')
    with pytest.raises(xs.ConfigError, match=r"fleet.toml: experiment 'checkout': key 'ratios'"):
        xs.LiveMonitor(fleet_log(), time_col="ts").check_all(path, "experiment")


def test_a_missing_experiment_column_is_named(config):
    with pytest.raises(xs.ColumnError, match="experiment_col"):
        xs.LiveMonitor(fleet_log(), time_col="ts").check_all(config, "experiment_id")


def test_alerts_name_their_experiment_and_go_to_its_route(tmp_path, webhook, capsys):
    """Through the command line: the experiment's own route and the global --webhook both receive
    the SRM alerts, each naming the experiment; the exit code is 1; --json has one object each."""
    data = tmp_path / "assignments.parquet"
    fleet_log().to_parquet(data)
    path = tmp_path / "fleet.toml"
    path.write_text(
        CONFIG.replace("start = 2026-01-06\n", f'start = 2026-01-06\nwebhook = "{webhook.url}/search"\n')
    )
    code = main(
        ["check-all", str(data), "--time-col", "ts", "--experiment-col", "experiment",
         "--config", str(path), "--webhook", f"{webhook.url}/all", "--json"]
    )  # fmt: skip
    assert code == 1
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["search", "checkout", "legacy"]
    assert printed["legacy"]["status"] == "unconfigured"
    received = {(where, body["alert_type"], body["details"]["experiment"]) for where, body in webhook.bodies}
    assert "SRM_SHUTOFF_TRIGGERED" in printed["search"]["alerts"]
    assert received == {
        (where, kind, "search") for where in ("/search", "/all") for kind in printed["search"]["alerts"]
    }, "every alert of the search experiment, to its route and to the global one; nothing else"


def test_the_text_table_lists_every_experiment(tmp_path, config, capsys):
    data = tmp_path / "assignments.parquet"
    fleet_log().to_parquet(data)
    code = main(
        [
            "check-all",
            str(data),
            "--time-col",
            "ts",
            "--experiment-col",
            "experiment",
            "--config",
            str(config),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith("3 experiment(s) from ")
    assert lines[0].endswith("(1 query); 1 alerting")
    assert [line.split()[0] for line in lines[2:]] == ["shutoff", "healthy", "unconfigured"]


class _Page(HTMLParser):
    """Headings, link targets, element ids and the summary table's rows of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.links, self.ids, self.rows = [], [], set(), []
        self._in, self._row = None, None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a":
            self.links.append(attributes.get("href"))
        if tag == "tr":
            self._row = []
        if tag in ("h2", "td"):
            self._in, self._text = tag, ""

    def handle_data(self, data):
        if self._in:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "h2" and self._in == "h2":
            self.headings.append(self._text)
        if tag == "td" and self._row is not None:
            self._row.append(self._text)
        if tag == "tr" and self._row:
            self.rows.append(self._row)
        if tag in ("h2", "td"):
            self._in = None


def test_the_fleet_report_opens_in_chromium_sorted_by_severity_and_linked(tmp_path, config, capsys):
    data = tmp_path / "assignments.parquet"
    fleet_log().to_parquet(data)
    page = tmp_path / "fleet.html"
    code = main(
        ["check-all", str(data), "--time-col", "ts", "--experiment-col", "experiment",
         "--config", str(config), "--report", str(page)]
    )  # fmt: skip
    assert code == 1
    assert f"report: {page.resolve()}" in capsys.readouterr().out
    dom, shot, requested = open_in_chromium(page, tmp_path, "fleet")
    assert requested == set(), "opening the report requested nothing"
    parsed = _Page()
    parsed.feed(dom)
    assert parsed.headings == ["Experiments", "Experiment search", "Experiment checkout"]
    summary = [row for row in parsed.rows if row[0] in ("search", "checkout", "legacy")]
    assert [(row[0], row[1]) for row in summary] == [
        ("search", "shutoff"),
        ("checkout", "healthy"),
        ("legacy", "unconfigured"),
    ]
    units = fleet_log().groupby("experiment").unit_id.nunique()
    assert summary[2][2] == f"{units['legacy']:,}"
    assert parsed.links == ["#experiment-1", "#experiment-2"]
    assert {"experiment-1", "experiment-2"} <= parsed.ids, "every link has its target"
    assert dom.count("data:image/png;base64,") == 2, "each tested experiment's chart is embedded"
    image = matplotlib.image.imread(shot)
    assert image[..., :3].std() > 0.05, "the screenshot shows a rendered page"


def test_the_fleet_report_as_markdown(tmp_path, config):
    fleet = xs.LiveMonitor(fleet_log(), time_col="ts").check_all(config, "experiment")
    path = write_fleet_report(fleet, read_config(config), tmp_path / "fleet.md")
    text = path.read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.MULTILINE) == [
        "Experiments",
        "Experiment search",
        "Experiment checkout",
    ]
    assert "| search | shutoff |" in text
    assert "| legacy | unconfigured |" in text


def test_an_ended_or_future_experiment_raises_nothing_for_its_silence(tmp_path):
    """At 06:30 on the day after ``checkout`` ended, its empty hours since the end are no drop (it is
    judged at its end); ``next`` starts later and has no rows yet: not running, no alert."""
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[defaults]\nfreq = "h"\nratios = { control = 1, treatment = 1 }\n'
        '[[experiment]]\nid = "checkout"\nend = 2026-01-08\n'
        '[[experiment]]\nid = "next"\nstart = 2026-02-01\n'
    )
    log = make_log(units=2_000, rows=40_000, days=4, seed=8).assign(experiment="checkout")
    until = pd.Timestamp("2026-01-08 06:30", tz="UTC")
    fleet = xs.LiveMonitor(log, time_col="ts", until=until).check_all(path, "experiment")
    checkout = fleet["checkout"]
    assert checkout.alerts == ()
    assert checkout.report.traffic.bins[-1] == pd.Timestamp("2026-01-07 23:00")
    assert not checkout.report.traffic.unfinished, "the bin before the end is complete"
    assert (fleet["next"].status, fleet["next"].alerts) == ("not running", ())
    silent = xs.LiveMonitor(log[log.ts < "2026-01-08"], time_col="ts", until=until).run_telemetry_checks(
        {"control": 1, "treatment": 1}, freq="h"
    )
    assert "TRAFFIC_DROP_ANOMALY" in silent.alerts_triggered, "judged at 06:30, the same rows are a drop"


GUARDED = """
[defaults]
freq = "h"

[[experiment]]
id = "checkout"
ratios = { control = 1, treatment = 1 }

[[experiment.guardrails]]
name = "Latency"
metric = "mean"
value_col = "load_ms"
direction = "increase"
max_allowed_change = 0.02
shutoff = true

[[experiment]]
id = "search"
ratios = { control = 2, a = 1, b = 1 }
start = 2026-01-06

[[experiment.guardrails]]
name = "Orders per session"
metric = "ratio"
numerator_col = "orders"
denominator_col = "sessions"
method = "ci"
max_allowed_change = 0.5

[[experiment]]
id = "tiny"
ratios = { control = 1, treatment = 1 }

[[experiment.guardrails]]
name = "Latency"
metric = "mean"
value_col = "load_ms"
"""


def guarded_log() -> pd.DataFrame:
    """The fleet log with metric columns: checkout's treatment is 10% slower; in ``tiny`` only one
    treatment unit has a latency (a mean and its variance need two)."""
    rng = np.random.default_rng(11)
    log = fleet_log()
    tiny = make_log(units=40, rows=200, days=4, seed=12).assign(experiment="tiny")
    log = pd.concat([log, tiny], ignore_index=True)
    slower = (log.experiment == "checkout") & (log.variant == "treatment")
    log["load_ms"] = rng.normal(200.0, 30.0, len(log)) * np.where(slower, 1.1, 1.0)
    log.loc[(log.experiment == "tiny") & (log.variant == "treatment") & (log.unit_id != 1), "load_ms"] = None
    log["orders"] = rng.poisson(1.0, len(log)).astype(float)
    log["sessions"] = rng.integers(1, 4, len(log)).astype(float)
    return log


def test_guardrails_per_experiment_come_from_one_more_query(tmp_path, query_log):
    """Every experiment's guardrails from one moments query grouped by experiment, each equal to its
    own monitor's; a breached shutoff guardrail stops checkout; tiny's are noted as not judged."""
    path = tmp_path / "fleet.toml"
    path.write_text(GUARDED)
    log = guarded_log()
    query_log.clear()
    fleet = xs.LiveMonitor(log, time_col="ts").check_all(path, "experiment")
    assert len(query_log) == 2, "the traffic matrix and the guardrails' moments, for every experiment"
    assert fleet.queries == 2
    config = read_config(path)
    for experiment in config.experiments[:2]:
        rows = log[log.experiment == experiment.id].drop(columns="experiment")
        if experiment.start is not None:
            rows = rows[rows.ts >= experiment.start.tz_localize(None)]
        alone = xs.LiveMonitor(rows, time_col="ts", until=after(log)).run_telemetry_checks(
            experiment.design.expected_ratios, freq="h", guardrails=experiment.guardrails
        )
        status = fleet[experiment.id]
        ours, theirs = comparable(status.report), comparable(alone)
        fleet_guardrails, alone_guardrails = ours.pop("guardrails"), theirs.pop("guardrails")
        assert ours == theirs
        for mine, single in zip(fleet_guardrails["results"], alone_guardrails["results"], strict=True):
            assert mine["status"] == single["status"]
            for key in ("relative_lift", "relative_ci_lower", "relative_ci_upper"):
                assert mine[key] == pytest.approx(single[key], rel=1e-9, abs=1e-12)
    checkout = fleet["checkout"]
    per_unit = (
        log[log.experiment == "checkout"]
        .groupby(["variant", "unit_id"])
        .load_ms.sum()
        .groupby("variant")
        .mean()
    )
    lift = checkout.report.guardrails.results[0].relative_lift
    assert lift == pytest.approx(per_unit["treatment"] / per_unit["control"] - 1, rel=1e-9)
    assert lift > 0.05
    assert checkout.status == "shutoff"
    assert "GUARDRAIL_BREACH" in checkout.alerts
    assert fleet["search"].report.guardrails.results[0].status == "ok"
    tiny = fleet["tiny"]
    assert tiny.report.guardrails is None
    assert tiny.notes == (
        "guardrails not judged: metric 'Latency': variant 'treatment' has 1 unit(s) with values; "
        "at least 2 are needed to estimate a variance",
    )
    assert f"note: tiny: {tiny.notes[0]}" in format_fleet(fleet)
    page = tmp_path / "fleet.html"
    write_fleet_report(fleet, config, page)
    assert "guardrails not judged: metric &#x27;Latency&#x27;" in page.read_text()


def test_a_guardrail_column_missing_from_the_data_names_the_experiment(tmp_path, query_log):
    path = tmp_path / "fleet.toml"
    path.write_text(GUARDED.replace('value_col = "load_ms"\ndirection', 'value_col = "load"\ndirection'))
    query_log.clear()
    with pytest.raises(
        xs.ConfigError, match=r"fleet.toml: experiment 'checkout': key 'guardrails': .*'load'"
    ):
        xs.LiveMonitor(guarded_log(), time_col="ts").check_all(path, "experiment")
    assert query_log == [], "refused before any query"


STATEFUL = """
[defaults]
freq = "h"
ratios = { control = 1, treatment = 1 }

[[experiment]]
id = "checkout"
ratios = { control = 1, treatment = 1 }
sequential_method = "sprt"

[[experiment]]
id = "search"
freq = "D"
ratios = { control = 2, a = 1, b = 1 }
start = 2026-01-06
end = 2026-01-08T06:00:00
"""


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3, unique=True),
    lateness_minutes=st.sampled_from([0, 90]),
    engine=st.sampled_from(["embedded", "probe"]),
    range_units=st.sampled_from([incremental.RANGE_UNITS, 25]),
)
def test_a_fleet_state_file_gives_every_experiment_the_full_runs_results(
    tmp_path_factory, seed, cuts, lateness_minutes, engine, range_units
):
    """One state file for every experiment (two bin sizes, a windowed experiment, an unlisted one
    tested by the default split, the seed's SPRT continuing checkout's sequence): after each random
    append, with rows late within the allowance, every experiment's record equals a full check_all's.
    A ``range_units`` of 25 splits the lookups into many unit ranges, as a large log's are."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "RANGE_UNITS", range_units)
        fleet_appends_match(tmp_path_factory, seed, cuts, lateness_minutes, engine)


def fleet_appends_match(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cuts: list[float], lateness_minutes: int, engine: str
) -> None:
    """The body of the property above: every experiment's record equals a full check_all's."""
    folder = tmp_path_factory.mktemp("fleet")
    config = folder / "fleet.toml"
    config.write_text(STATEFUL)
    log = fleet_log()
    rng = np.random.default_rng(seed)
    delay = pd.to_timedelta(rng.integers(0, lateness_minutes * 60 + 1, len(log)), unit="s")
    log = log.assign(arrived=log.ts + delay)
    state = folder / "fleet-state.duckdb"
    span = log.arrived.max() - START
    incremental = 0
    for cut in [*sorted(cuts), 1.0]:
        now = START + span * cut + pd.Timedelta(seconds=1)
        arrived = log[log.arrived < now].drop(columns="arrived")
        source: object = arrived
        if engine == "probe":
            users = ibis.duckdb.connect()
            source = users.create_table("log", arrived)
        kept = xs.LiveMonitor(
            source, time_col="ts", until=now, state=state, lateness=pd.Timedelta(minutes=lateness_minutes)
        ).check_all(config, "experiment")
        full = xs.LiveMonitor(arrived, time_col="ts", until=now).check_all(config, "experiment")
        assert [(s.experiment, s.status, s.units) for s in kept.experiments] == [
            (s.experiment, s.status, s.units) for s in full.experiments
        ]
        for mine, theirs in zip(kept.experiments, full.experiments, strict=True):
            if theirs.report is not None:
                assert comparable(mine.report) == comparable(theirs.report), (cut, mine.experiment)
                incremental += not mine.report.state.full_build
        if engine == "probe":
            written = users.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            assert written == [("log",)], "nothing is written to the user's database"
    assert incremental >= 1


def test_a_fleet_state_file_is_tied_to_the_experiments_and_verify_compares_each(tmp_path):
    log = fleet_log()
    config, state = tmp_path / "fleet.toml", tmp_path / "fleet-state.duckdb"
    config.write_text(STATEFUL)
    first = xs.LiveMonitor(log, time_col="ts", state=state).check_all(config, "experiment")
    assert first["checkout"].report.state.full_build
    verified = xs.LiveMonitor(log, time_col="ts", state=state, verify=True).check_all(config, "experiment")
    assert verified["checkout"].report.state.verified is True
    assert not verified["checkout"].report.state.full_build
    late = log.iloc[:50].assign(ts=START + pd.Timedelta(hours=1), experiment="checkout")
    grown = pd.concat([log, late], ignore_index=True)
    checked = xs.LiveMonitor(grown, time_col="ts", state=state, verify=True).check_all(config, "experiment")
    assert checked["checkout"].report.state.verified is False, "rows older than the allowance are found"
    assert checked["checkout"].report.state.differences
    assert checked["search"].report.state.verified is True
    config.write_text(STATEFUL.replace("start = 2026-01-06", "start = 2026-01-07"))
    with pytest.raises(StateMismatchError, match=r"experiment 'search': 'freq=D start=2026-01-06"):
        xs.LiveMonitor(log, time_col="ts", state=state).check_all(config, "experiment")
    rebuilt = xs.LiveMonitor(log, time_col="ts", state=state, refresh=True).check_all(config, "experiment")
    assert rebuilt["search"].report.state.full_build
    anytime = STATEFUL.replace("start = 2026-01-06", "start = 2026-01-07").replace('"sprt"', '"anytime"')
    config.write_text(anytime)
    switched = r"experiment 'checkout': 'freq=h start=None end=None sprt=\w+' in the file, 'freq=h start=None"
    with pytest.raises(StateMismatchError, match=switched):
        xs.LiveMonitor(log, time_col="ts", state=state).check_all(config, "experiment")


def test_check_all_keeps_a_state_file_from_the_command_line(tmp_path, capsys):
    data, state, config = tmp_path / "assignments.parquet", tmp_path / "fleet.duckdb", tmp_path / "fleet.toml"
    fleet_log().to_parquet(data)
    config.write_text(STATEFUL)
    arguments = ["check-all", str(data), "--time-col", "ts", "--experiment-col", "experiment",
                 "--config", str(config), "--state", str(state), "--lateness", "2h", "--json"]  # fmt: skip
    builds = []
    for _ in range(2):
        main(arguments)
        printed = json.loads(capsys.readouterr().out)
        builds.append(printed["checkout"]["report"]["state"]["full_build"])
    assert builds == [True, False]
    assert printed["checkout"]["report"]["state"]["state_path"] == str(state)
