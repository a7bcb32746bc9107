"""Runs with a state file give exactly what a full run on the same rows gives.

Random logs arrive in random appends: each row has an exposure time and an arrival time up to
``lateness`` later, and the log at a run holds the rows that have arrived by then. After every
append the run with a state file is compared, record by record, with a full run without one.
"""

from __future__ import annotations

import itertools

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpyrment_sql as xs
from xpyrment_sql.checks import incremental
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.state import StateError, StateMismatchError

from conftest import make_log

START = pd.Timestamp("2026-01-05")
RATIOS = {"control": 1, "treatment": 1}


def arriving_log(seed: int, rows: int, units: int, days: int, lateness_minutes: int) -> pd.DataFrame:
    """Exposures with an arrival time each, up to ``lateness_minutes`` after the exposure."""
    log = make_log(units=units, rows=rows, days=days, seed=seed)
    rng = np.random.default_rng(seed + 1)
    crossover = rng.random(len(log)) < 0.02
    log.loc[crossover, "variant"] = np.where(log.variant[crossover] == "control", "treatment", "control")
    delay = pd.to_timedelta(rng.integers(0, lateness_minutes * 60 + 1, len(log)), unit="s")
    return log.assign(arrived=log.ts + delay)


def comparable(report: xs.TelemetryReport) -> dict:
    """A report's numbers, without what only an incremental run has."""
    data = report.to_dict()
    data.pop("state")
    return data


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.floats(0.05, 0.95), min_size=1, max_size=4, unique=True),
    freq=st.sampled_from(["h", "15min", "D"]),
    lateness_minutes=st.sampled_from([0, 20, 90]),
    use_until=st.booleans(),
    engine=st.sampled_from(["embedded", "probe"]),
    sequential=st.sampled_from(["anytime", "sprt"]),
    ratios=st.sampled_from([RATIOS, {"control": 1, "treatment": 3}]),
    range_units=st.sampled_from([incremental.RANGE_UNITS, 25]),
    text_units=st.booleans(),
)
def test_appends_give_exactly_the_full_runs_results(
    tmp_path_factory,
    seed,
    cuts,
    freq,
    lateness_minutes,
    use_until,
    engine,
    sequential,
    ratios,
    range_units,
    text_units,
):
    """``embedded``: a DataFrame, merged into the state's first exposures; ``probe``: a table in the
    user's own database, probed read-only (nothing may be written there). A ``range_units`` of 25
    splits these small windows' lookups into many unit ranges, as a billion-row log's are, bounded by
    integer or text unit ids."""
    log = arriving_log(seed, rows=1500, units=300, days=3, lateness_minutes=lateness_minutes)
    if text_units:
        log = log.assign(unit_id="user-" + log.unit_id.astype(str))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "RANGE_UNITS", range_units)
        appended_runs_match(
            tmp_path_factory, log, cuts, freq, lateness_minutes, use_until, engine, sequential, ratios
        )


def appended_runs_match(
    tmp_path_factory: pytest.TempPathFactory,
    log: pd.DataFrame,
    cuts: list[float],
    freq: str,
    lateness_minutes: int,
    use_until: bool,
    engine: str,
    sequential: str,
    ratios: dict[str, int],
) -> None:
    """The body of the property above: every run with a state file equals a full run, as ``log``
    (with its arrival times) arrives."""
    state = tmp_path_factory.mktemp("state") / "monitor-state.duckdb"
    span = log.arrived.max() - START
    incremental_runs = 0
    for cut in [*sorted(cuts), 1.0]:
        now = START + span * cut + pd.Timedelta(seconds=1)
        arrived = log[log.arrived < now].drop(columns="arrived")
        if arrived.empty:
            continue
        until = now if use_until else None
        lateness = pd.Timedelta(minutes=lateness_minutes)
        source: object = arrived
        if engine == "probe":
            users = ibis.duckdb.connect()
            source = users.create_table("log", arrived)
        kept = xs.LiveMonitor(source, time_col="ts", until=until, state=state, lateness=lateness)
        full = xs.LiveMonitor(arrived, time_col="ts", until=until)
        got = kept.run_telemetry_checks(ratios, freq=freq, sequential_method=sequential)
        expected = full.run_telemetry_checks(ratios, freq=freq, sequential_method=sequential)
        assert comparable(got) == comparable(expected), (cut, freq, engine)
        if engine == "probe":
            written = users.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            assert written == [("log",)], "nothing is written to the user's database"
        assert got.state is not None
        assert got.state.state_path == str(state)
        incremental_runs += not got.state.full_build
    assert incremental_runs >= 1, "every log here has rows before its last cut"


def test_the_second_run_reads_only_the_window_and_says_so(tmp_path):
    log = make_log(units=500, rows=5000, days=4)
    state = tmp_path / "state.duckdb"
    first = xs.LiveMonitor(log[log.ts < START + pd.Timedelta(days=3)], time_col="ts", state=state)
    built = first.run_telemetry_checks(RATIOS, freq="h").state
    assert built.full_build
    assert built.since is None
    second = xs.LiveMonitor(log, time_col="ts", state=state, lateness="2h").run_telemetry_checks(
        RATIOS, freq="h"
    )
    assert not second.state.full_build
    assert second.state.since == (built.watermark - pd.Timedelta(hours=2)).floor("h")
    assert second.state.watermark == log.ts.max().tz_localize("UTC")


def test_a_growing_parquet_folder_is_followed_without_reading_its_span(tmp_path):
    """A later run reads one window: it plans no time chunks, so the footers are never read."""
    log = make_log(units=500, rows=5000, days=4).sort_values("ts")
    folder, state = tmp_path / "log", tmp_path / "state.duckdb"
    folder.mkdir()
    cut = START + pd.Timedelta(days=3, hours=5)
    log[log.ts < cut].to_parquet(folder / "part-0.parquet")
    xs.LiveMonitor(str(folder), time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    log[log.ts >= cut].to_parquet(folder / "part-1.parquet")
    later = xs.LiveMonitor(str(folder), time_col="ts", state=state)
    got = later.run_telemetry_checks(RATIOS, freq="h")
    assert not got.state.full_build
    assert "span" not in vars(later.source), "no footer read on an incremental run"
    expected = xs.LiveMonitor(str(folder), time_col="ts").run_telemetry_checks(RATIOS, freq="h")
    assert comparable(got) == comparable(expected)


def test_a_state_file_of_other_settings_is_refused_naming_what_differs(tmp_path):
    log = make_log()
    state = tmp_path / "state.duckdb"
    xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    with pytest.raises(StateMismatchError, match=r"state\.duckdb.*freq") as info:
        xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="D")
    assert "refresh" in str(info.value)
    rebuilt = xs.LiveMonitor(log, time_col="ts", state=state, refresh=True).run_telemetry_checks(
        RATIOS, freq="D"
    )
    assert rebuilt.state.full_build


def test_verify_finds_rows_later_than_the_allowance(tmp_path):
    log = make_log(units=400, rows=4000, days=3)
    cut = START + pd.Timedelta(days=2)
    state = tmp_path / "state.duckdb"
    on_time = log[log.ts < cut]
    xs.LiveMonitor(on_time, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    too_late = log.iloc[:5].assign(ts=START + pd.Timedelta(hours=1), unit_id=[10**6 + i for i in range(5)])
    grown = pd.concat([log, too_late], ignore_index=True)
    run = xs.LiveMonitor(grown, time_col="ts", state=state, verify=True).run_telemetry_checks(
        RATIOS, freq="h"
    )
    assert run.state.verified is False
    assert any("units differ" in d for d in run.state.differences)
    clean = xs.LiveMonitor(grown, time_col="ts", state=state, refresh=True, verify=True)
    assert clean.run_telemetry_checks(RATIOS, freq="h").state.verified is True


def test_until_before_the_watermark_is_refused(tmp_path):
    log = make_log()
    state = tmp_path / "state.duckdb"
    xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    with pytest.raises(StateError, match="before the watermark"):
        xs.LiveMonitor(log, time_col="ts", state=state, until=START).run_telemetry_checks(RATIOS, freq="h")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"lateness": "soon"}, "lateness='soon' is not a duration"),
        ({"lateness": "-1h"}, "must be a duration of zero or more"),
    ],
)
def test_bad_state_settings_are_refused(tmp_path, kwargs, words):
    with pytest.raises(ParameterError, match=words):
        xs.LiveMonitor(make_log(), time_col="ts", state=tmp_path / "s.duckdb", **kwargs)


def test_a_folder_is_not_a_state_file(tmp_path):
    with pytest.raises(ParameterError, match="is a folder"):
        xs.LiveMonitor(make_log(), time_col="ts", state=tmp_path)


def test_state_needs_exact_counts(tmp_path):
    approx = xs.LiveMonitor(make_log(), time_col="ts", state=tmp_path / "s.duckdb", exact=False)
    with pytest.raises(ParameterError, match="exact=True"):
        approx.run_telemetry_checks(RATIOS)


def test_a_late_row_moves_a_units_first_exposure_to_an_earlier_bin(tmp_path):
    stamps = pd.to_datetime(["2026-01-05 09:05", "2026-01-05 10:40", "2026-01-05 11:10"])
    log = pd.DataFrame({"unit_id": [1, 2, 3], "variant": ["control", "treatment", "control"], "ts": stamps})
    state = tmp_path / "state.duckdb"
    xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    late = pd.DataFrame(
        {"unit_id": [2], "variant": ["treatment"], "ts": pd.to_datetime(["2026-01-05 09:55"])}
    )
    grown = pd.concat([log, late], ignore_index=True)
    kept = xs.LiveMonitor(grown, time_col="ts", state=state, lateness="2h").run_telemetry_checks(
        RATIOS, freq="h"
    )
    full = xs.LiveMonitor(grown, time_col="ts").run_telemetry_checks(RATIOS, freq="h")
    np.testing.assert_array_equal(kept.traffic.new, full.traffic.new)
    assert kept.traffic.new[0].tolist() == [1, 1], "unit 2 is first seen at 09:55 now, not 10:40"
    with duckdb.connect(str(state)) as con:
        rows = con.execute(f"SELECT first_ts FROM {incremental.FIRSTS} WHERE unit = 2 ORDER BY 1").fetchall()
    superseded = ["2026-01-05 09:55:00", "2026-01-05 10:40:00"]
    assert [str(ts) for (ts,) in rows] == superseded, "the earlier exposure appended, the later one kept"
    stamp = pd.to_datetime(["2026-01-05 11:30"] * 2)
    crossed = pd.DataFrame({"unit_id": [2, 4], "variant": ["control", "treatment"], "ts": stamp})
    grown = pd.concat([grown, crossed], ignore_index=True)
    kept = xs.LiveMonitor(grown, time_col="ts", state=state, lateness="2h").run_telemetry_checks(
        RATIOS, freq="h"
    )
    full = xs.LiveMonitor(grown, time_col="ts").run_telemetry_checks(RATIOS, freq="h")
    assert comparable(kept) == comparable(full), "the superseded 10:40 row changes nothing"
    assert kept.multiple_exposure.multiple_units == 1


def late_mismatch_log() -> pd.DataFrame:
    """Three healthy days, then treatment loses every new unit on day four (the SPRT crosses then)."""
    log = make_log(units=20_000, rows=60_000, days=4, seed=3)
    first_seen = log.groupby("unit_id").ts.transform("min")
    return log[(log.variant == "control") | (first_seen < START + pd.Timedelta(days=3))]


def test_the_sprt_crossing_found_inside_a_later_window_is_the_full_runs(tmp_path):
    """The sequence continues from the pairs counted before the window: the crossing position found
    in an hourly run equals the full run's."""
    log = late_mismatch_log()
    for ratios in (RATIOS,):
        state = tmp_path / "state.duckdb"
        found_in_window = False
        for hours in range(72, 97, 3):
            now = START + pd.Timedelta(hours=hours)
            arrived = log[log.ts < now]
            kept = xs.LiveMonitor(arrived, time_col="ts", state=state).run_telemetry_checks(
                ratios, freq="h", sequential_method="sprt"
            )
            full = xs.LiveMonitor(arrived, time_col="ts").run_telemetry_checks(
                ratios, freq="h", sequential_method="sprt"
            )
            assert kept.sequential_srm == full.sequential_srm, (ratios, hours)
            crossed = kept.sequential_srm.stopped_index >= 0
            if crossed and not found_in_window:
                assert not kept.state.full_build
                at = pd.Timestamp(kept.sequential_srm.stopped_at).tz_localize("UTC")
                assert at >= kept.state.since, "the crossing lies inside the window"
            found_in_window |= crossed
        assert found_in_window, f"the crossing was found by an incremental run ({ratios})"


def test_a_state_built_before_the_second_arm_appears_keeps_its_sprt_reference(tmp_path):
    """The first run sees only ``treatment`` (its checks refuse the design, but its counts are kept);
    ``control``, which sorts first, arrives later. The reference stays ``treatment``; the mixture LR
    is symmetric in the arms, so the result is the full run's."""
    log = late_mismatch_log()
    head = log[(log.ts < START + pd.Timedelta(hours=2)) & (log.variant == "treatment")]
    state = tmp_path / "state.duckdb"
    with pytest.raises(ParameterError, match="the 1 variants in the data are: 'treatment'"):
        xs.LiveMonitor(head, time_col="ts", state=state).run_telemetry_checks(
            RATIOS, sequential_method="sprt"
        )
    for hours in (30, 96):
        arrived = pd.concat(
            [
                head,
                log[(log.ts >= START + pd.Timedelta(hours=2)) & (log.ts < START + pd.Timedelta(hours=hours))],
            ]
        )
        kept = xs.LiveMonitor(arrived, time_col="ts", state=state, lateness="0s").run_telemetry_checks(
            RATIOS, sequential_method="sprt"
        )
        full = xs.LiveMonitor(arrived, time_col="ts").run_telemetry_checks(RATIOS, sequential_method="sprt")
        assert kept.sequential_srm == full.sequential_srm
    assert kept.sequential_srm.stopped_index >= 0


def test_a_state_built_for_another_sequential_test_is_refused(tmp_path):
    log = make_log()
    state = tmp_path / "state.duckdb"
    xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    with pytest.raises(
        StateMismatchError, match=r"sequential: 'anytime' in the file, 'sprt [0-9a-f]{12}' now"
    ):
        xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(
            RATIOS, freq="h", sequential_method="sprt"
        )


@pytest.mark.parametrize("kind", ["int", "text"])
def test_the_lookup_ranges_cover_every_unit_once_in_balanced_parts(monkeypatch, kind):
    """Contiguous half-open ranges, open at both ends, each holding about ``RANGE_UNITS`` triples (the
    sample is the whole table here, so its quantiles are exact)."""
    monkeypatch.setattr(incremental, "RANGE_UNITS", 100)
    con = duckdb.connect()
    unit = "i * 7919 % 1000" if kind == "int" else "printf('u-%04d', i * 7919 % 1000)"
    con.execute(f"CREATE TEMP TABLE {incremental.WINDOW} AS SELECT {unit} AS unit FROM range(1000) t(i)")
    ranges = incremental.unit_ranges(con, incremental.WINDOW)
    assert len(ranges) == 10
    assert ranges[0][0] is None
    assert ranges[-1][1] is None
    assert all(high == low for (_, high), (low, _) in itertools.pairwise(ranges))
    units = sorted(row[0] for row in con.execute(f"SELECT unit FROM {incremental.WINDOW}").fetchall())
    sizes = [
        sum((low is None or u >= low) and (high is None or u < high) for u in units) for low, high in ranges
    ]
    assert sum(sizes) == 1000
    assert all(90 <= size <= 110 for size in sizes), sizes


def test_a_small_window_is_looked_up_in_one_range(monkeypatch):
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE {incremental.WINDOW} AS SELECT i AS unit FROM range(50) t(i)")
    assert incremental.unit_ranges(con, incremental.WINDOW) == [(None, None)]
    con.execute(f"DELETE FROM {incremental.WINDOW}")
    assert incremental.unit_ranges(con, incremental.WINDOW) == [(None, None)]


def test_the_stored_first_exposures_are_kept_sorted_by_unit(tmp_path):
    """The lookup's ranges prune the stored pairs by their row groups' unit bounds, which needs the
    first run's pairs sorted by unit and every later run's appended sorted too."""
    log = make_log(units=400, rows=4000, days=3)
    state = tmp_path / "state.duckdb"
    cut = log.ts.min() + (log.ts.max() - log.ts.min()) / 2
    xs.LiveMonitor(log[log.ts < cut], time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    with duckdb.connect(str(state)) as con:
        first = [row[0] for row in con.execute(f"SELECT unit FROM {incremental.FIRSTS}").fetchall()]
    assert first == sorted(first)
    xs.LiveMonitor(log, time_col="ts", state=state).run_telemetry_checks(RATIOS, freq="h")
    with duckdb.connect(str(state)) as con:
        every = [row[0] for row in con.execute(f"SELECT unit FROM {incremental.FIRSTS}").fetchall()]
    assert len(every) > len(first)
    descents = sum(a > b for a, b in itertools.pairwise(every))
    assert descents <= 1, "the kept pairs, then the appended ones, each sorted by unit"


@pytest.mark.parametrize("ranges", [[(None, None)], [(None, 5), (5, None)]])
def test_the_lookup_reads_the_stored_pairs_once_per_range(ranges):
    """The stored pairs are the history (200M at 1B rows): each range's lookup scans them once, its
    later uses reading the common table expression DuckDB materializes."""
    pair = {"variant": "string", "unit": "int64", "first_ts": "timestamp"}
    window = ibis.table({"bin": "int64", **pair, "last_ts": "timestamp"}, name="window_triples")
    stored = ibis.table(pair, name="first_exposures")
    since = pd.Timestamp("2026-01-05 10:00", tz="UTC")
    parts = [
        incremental._changed(incremental._within(window, bounds), incremental._within(stored, bounds), since)
        for bounds in ranges
    ]
    sql = ibis.to_sql(ibis.union(*parts), dialect="duckdb")
    assert sql.count('"first_exposures"') == len(ranges)
