"""The state store: fingerprint checks, the lock between processes, and writes that are all or nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from xpyrment_sql.errors import XpyrmentError
from xpyrment_sql.state import StateError, StateLockedError, StateMismatchError, StateStore

PRINT = {"source": "files /data/*.parquet", "freq": "h", "tz": "UTC"}
ROOT = Path(__file__).resolve().parents[2]


def _child(script: str) -> subprocess.Popen[str]:
    """A Python process running ``script`` with this checkout importable, its stdout readable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )


def _stored(path: Path) -> tuple[str | None, bool]:
    """The watermark of the state file and whether it holds a table ``big`` (fingerprint checked)."""
    with StateStore.open(path, PRINT, lock_timeout=10) as store:
        return store.get("watermark"), store.has_table("big")


def test_errors_are_xpyrment_errors():
    assert issubclass(StateMismatchError, StateError)
    assert issubclass(StateLockedError, StateError)
    assert issubclass(StateError, XpyrmentError)


def test_a_new_file_is_new_and_remembers_what_it_is_given(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store:
        assert store.is_new
        assert store.alias == "xpyrment_state"
        assert store.table("bins") == '"xpyrment_state".main."bins"'
        assert store.has_table("meta")
        with store.transaction():
            store.set("watermark", "2026-01-05T09:00:00+00:00")
            store.set("watermark", "2026-01-05T10:00:00+00:00")
    with StateStore.open(path, PRINT) as store:
        assert not store.is_new
        assert store.get("watermark") == "2026-01-05T10:00:00+00:00"
        assert store.get("missing") is None


def test_another_fingerprint_is_refused_naming_the_file_and_each_difference(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "2026-01-05T10:00:00+00:00")
    other = {"source": PRINT["source"], "freq": "D", "variant_col": "arm VARCHAR"}
    with pytest.raises(StateMismatchError) as info:
        StateStore.open(path, other)
    message = str(info.value)
    assert str(path) in message
    assert "freq: 'h' in the file, 'D' now" in message
    assert "variant_col: None in the file, 'arm VARCHAR' now" in message
    assert "tz: 'UTC' in the file, None now" in message
    assert "refresh=True" in message
    assert "--full-refresh" in message
    with StateStore.open(path, other, refresh=True) as store:
        assert store.is_new
        assert store.get("watermark") is None
    with StateStore.open(path, other) as store:
        assert not store.is_new


def test_refresh_drops_every_state_table_and_view(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.run(f"CREATE TABLE {store.table('bins')} AS SELECT 1 AS bin")
        store.run(f'CREATE SCHEMA "{store.alias}".extra')
        store.run(f'CREATE TABLE "{store.alias}".extra.pairs AS SELECT 1 AS unit')
        store.run(f"CREATE VIEW {store.table('recent')} AS SELECT * FROM {store.table('bins')}")
    with StateStore.open(path, PRINT, refresh=True) as store:
        assert store.is_new
        tables = store.run("SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [store.alias])
        views = store.run(
            "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal", [store.alias]
        )
        assert (tables, views) == ([("meta",)], [])


def test_a_state_from_another_format_is_refused_by_name(tmp_path):
    path = tmp_path / "state.duckdb"
    StateStore.open(path, PRINT).close()
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '1' WHERE key = 'format'")
    with pytest.raises(StateMismatchError, match=r"state\.duckdb has state format 1; .* reads format"):
        StateStore.open(path, PRINT)
    with StateStore.open(path, PRINT, refresh=True) as store:
        assert store.is_new


def test_files_that_are_not_state_files_are_refused_by_name_and_left_untouched(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database")
    with pytest.raises(StateError, match=r"notes\.txt cannot be opened as a DuckDB database"):
        StateStore.open(garbage, PRINT)
    assert garbage.read_text() == "not a database"
    foreign = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE exposures AS SELECT 1 AS unit_id")
    for refresh in (False, True):
        with pytest.raises(StateError, match=r"warehouse\.duckdb is a DuckDB database but not a state file"):
            StateStore.open(foreign, PRINT, refresh=refresh)
    with duckdb.connect(str(foreign)) as con:
        assert con.execute("SELECT count(*) FROM exposures").fetchone() == (1,)


def test_an_empty_database_becomes_a_new_state(tmp_path):
    path = tmp_path / "state.duckdb"
    duckdb.connect(str(path)).close()
    with StateStore.open(path, PRINT) as store:
        assert store.is_new


def test_an_odd_path_and_alias_are_quoted(tmp_path):
    path, odd = tmp_path / "it's state.duckdb", 'odd "name'
    with StateStore.open(path, PRINT, alias='my "state"') as store, store.transaction():
        store.set("watermark", "w")
        store.run(f"CREATE TABLE {store.table(odd)} AS SELECT 1 AS x")
    with StateStore.open(path, PRINT, alias='my "state"') as store:
        assert store.get("watermark") == "w"
        assert store.has_table(odd)


def test_state_tables_sit_next_to_the_rows_on_the_given_connection(tmp_path):
    path = tmp_path / "state.duckdb"
    con = duckdb.connect()
    con.execute("CREATE TABLE exposures AS SELECT range % 3 AS unit FROM range(10)")
    with StateStore.open(path, PRINT, con=con) as store:
        assert store.con is con
        with store.transaction():
            store.run(f"CREATE TABLE {store.table('units')} AS SELECT DISTINCT unit FROM exposures")
        with pytest.raises(StateError, match="already has a database of that name"):
            StateStore.open(tmp_path / "other.duckdb", PRINT, con=con)
        assert store.get("format") is not None  # the failed open left this store attached
    attached = con.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall()
    assert ("xpyrment_state",) not in attached
    assert con.execute("SELECT count(*) FROM exposures").fetchone() == (10,)
    with StateStore.open(path, PRINT, con=con) as store:
        assert store.run(f"SELECT count(*) FROM {store.table('units')}") == [(3,)]


def test_close_is_idempotent_and_closes_only_a_private_connection(tmp_path):
    store = StateStore.open(tmp_path / "state.duckdb", PRINT)
    store.close()
    store.close()
    with pytest.raises(duckdb.ConnectionException):
        store.con.execute("SELECT 1")
    con = duckdb.connect()
    StateStore.open(tmp_path / "state.duckdb", PRINT, con=con).close()
    assert con.execute("SELECT 1").fetchone() == (1,)


def test_an_exception_inside_a_transaction_leaves_the_previous_state(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "before")

    def write_then_fail(store: StateStore) -> None:
        with store.transaction():
            store.set("watermark", "after")
            store.run(f"CREATE TABLE {store.table('big')} AS SELECT range AS x FROM range(100000)")
            raise RuntimeError("disk full")

    with StateStore.open(path, PRINT) as store:
        with pytest.raises(RuntimeError, match="disk full"):
            write_then_fail(store)
        assert store.get("watermark") == "before"
        assert not store.has_table("big")
        with store.transaction():  # the connection is usable again
            store.set("lateness", "1h")
    assert _stored(path) == ("before", False)


def test_a_caught_failed_statement_is_not_committed_silently(tmp_path):
    """DuckDB aborts the transaction on a failed statement and would then treat COMMIT as ROLLBACK."""
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store:
        failed = r"failed inside a transaction, so nothing was written"
        with pytest.raises(StateError, match=failed), store.transaction():  # noqa: PT012
            store.set("watermark", "after")
            with pytest.raises(duckdb.Error):
                store.run(f"SELECT * FROM {store.table('no_such_table')}")
        assert store.get("watermark") is None


def test_a_nested_transaction_joins_the_outer_one(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store:
        with store.transaction():
            store.set("watermark", "outer")
            with store.transaction():
                store.set("lateness", "inner")
        assert (store.get("watermark"), store.get("lateness")) == ("outer", "inner")
        with pytest.raises(StateError, match=r"an inner transaction .* failed"), store.transaction():  # noqa: PT012
            store.set("watermark", "changed")
            with pytest.raises(RuntimeError), store.transaction():
                raise RuntimeError("inner")
        assert store.get("watermark") == "outer"


def test_a_process_killed_inside_a_transaction_leaves_the_previous_state(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "before")
    child = _child(
        f"""
        import time
        from xpyrment_sql.state import StateStore
        store = StateStore.open({str(path)!r}, {PRINT!r})
        with store.transaction():
            store.set("watermark", "after")
            store.run(f"CREATE TABLE {{store.table('big')}} AS SELECT range AS x FROM range(3000000)")
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert _stored(path) == ("before", False)


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.31, 0.57])
def test_a_process_killed_at_any_moment_leaves_a_committed_state(tmp_path, delay):
    """Killed while writing, committing or checkpointing: the file holds the last or the next commit."""
    path = tmp_path / "state.duckdb"
    child = _child(
        f"""
        from xpyrment_sql.state import StateStore
        store = StateStore.open({str(path)!r}, {PRINT!r})
        for run in range(1, 1000):
            with store.transaction():
                store.set("watermark", str(run))
                store.run(
                    f"CREATE OR REPLACE TABLE {{store.table('big')}} AS "
                    f"SELECT range AS unit, {{run}} AS run FROM range(1000000)"
                )
            print(run, flush=True)
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "1"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    committed = [1, *map(int, child.stdout.read().split())]
    child.wait(timeout=30)
    with StateStore.open(path, PRINT, lock_timeout=10) as store:
        watermark = int(store.get("watermark") or 0)
        assert watermark in (committed[-1], committed[-1] + 1)
        table = store.table("big")
        assert store.run(f"SELECT count(*), min(run), max(run) FROM {table}") == [
            (1_000_000, watermark, watermark)
        ]


@pytest.mark.parametrize(
    ("rows", "raised"),
    [(3_000_000, "IOException"), (50_000, "StateError")],
    ids=["while-writing", "while-committing"],
)
def test_a_full_disk_mid_write_leaves_the_previous_state(tmp_path, rows, raised):
    """A file size limit stands in for a full disk: writes fail in the statement or in COMMIT."""
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "before")
    child = _child(
        f"""
        import os, resource, signal
        from xpyrment_sql.state import StateStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = os.path.getsize({str(path)!r}) + 4096
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        with StateStore.open({str(path)!r}, {PRINT!r}) as store:
            try:
                with store.transaction():
                    store.set("watermark", "after")
                    store.run(
                        f"CREATE TABLE {{store.table('big')}} AS "
                        f"SELECT range AS x, random()::VARCHAR AS y FROM range({rows})"
                    )
            except Exception as exc:
                print(type(exc).__name__, flush=True)
            print(store.get("watermark"), flush=True)
        """
    )
    out, _ = child.communicate(timeout=60)
    assert out.split() == [raised, "before"]
    assert _stored(path) == ("before", False)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    child = _child(
        f"""
        import time
        from xpyrment_sql.state import StateStore
        with StateStore.open({str(path)!r}, {PRINT!r}):
            print("holding", flush=True)
            time.sleep({seconds})
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    return child


def test_a_second_run_waits_for_the_first_and_then_proceeds(tmp_path):
    path = tmp_path / "state.duckdb"
    child = _hold_lock(path, 1.5)
    started = time.monotonic()
    with StateStore.open(path, PRINT, lock_timeout=30) as store:
        waited = time.monotonic() - started
        assert not store.is_new
    assert waited > 0.5
    child.wait(timeout=30)


def test_a_lock_held_too_long_says_who_holds_it(tmp_path):
    path = tmp_path / "state.duckdb"
    child = _hold_lock(path, 10)
    try:
        with pytest.raises(StateLockedError) as info:
            StateStore.open(path, PRINT, lock_timeout=0.3)
        message = str(info.value)
        assert str(path) in message
        assert "another run" in message
        assert f"process {child.pid} since" in message
    finally:
        child.kill()
        child.wait(timeout=30)
    StateStore.open(path, PRINT, lock_timeout=5).close()  # a killed holder's lock is gone with it


def test_one_process_cannot_open_a_state_file_twice(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT), pytest.raises(StateLockedError, match=f"process {os.getpid()}"):
        StateStore.open(path, PRINT, lock_timeout=0)


def test_the_lock_is_released_when_opening_fails(tmp_path):
    path = tmp_path / "state.duckdb"
    StateStore.open(path, PRINT).close()
    with pytest.raises(StateMismatchError):
        StateStore.open(path, {**PRINT, "freq": "D"})
    StateStore.open(path, PRINT, lock_timeout=0.2).close()
    assert os.path.exists(f"{path}.lock")


def test_a_state_file_in_a_missing_folder_is_refused_by_name(tmp_path):
    path = tmp_path / "no" / "such" / "state.duckdb"
    with pytest.raises(StateError, match=r"state\.duckdb"):
        StateStore.open(path, PRINT)
