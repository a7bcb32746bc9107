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

from xpyrment_sql.state import StateError, StateLockedError, StateMismatchError, StateStore

PRINT = {"source": "files /data/*.parquet", "freq": "h", "tz": "UTC"}
ROOT = Path(__file__).resolve().parents[2]


def test_a_new_file_is_new_and_remembers_what_it_is_given(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store:
        assert store.is_new
        with store.transaction():
            store.set("watermark", "2026-01-05T10:00:00+00:00")
    with StateStore.open(path, PRINT) as store:
        assert not store.is_new
        assert store.get("watermark") == "2026-01-05T10:00:00+00:00"
        assert store.get("missing") is None


def test_another_fingerprint_is_refused_naming_the_file_and_each_difference(tmp_path):
    path = tmp_path / "state.duckdb"
    StateStore.open(path, PRINT).close()
    other = {**PRINT, "freq": "D", "variant_col": "arm VARCHAR"}
    with pytest.raises(StateMismatchError) as info:
        StateStore.open(path, other)
    message = str(info.value)
    assert str(path) in message
    assert "freq: 'h' in the file, 'D' now" in message
    assert "variant_col: None in the file, 'arm VARCHAR' now" in message
    assert "refresh=True" in message
    with StateStore.open(path, other, refresh=True) as store:
        assert store.is_new
    StateStore.open(path, other).close()


def test_an_exception_inside_a_transaction_leaves_the_previous_state(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "before")
    def write_then_fail(store: StateStore) -> None:
        with store.transaction():
            store.set("watermark", "after")
            store.run(f"CREATE TABLE {store.table('half')} AS SELECT 1 AS x")
            raise RuntimeError("disk full")

    with StateStore.open(path, PRINT) as store:
        with pytest.raises(RuntimeError, match="disk full"):
            write_then_fail(store)
        assert store.get("watermark") == "before"
        assert not store.has_table("half")


def test_a_process_killed_mid_write_leaves_the_previous_state(tmp_path):
    path = tmp_path / "state.duckdb"
    with StateStore.open(path, PRINT) as store, store.transaction():
        store.set("watermark", "before")
    writer = textwrap.dedent(
        f"""
        import sys, time
        from xpyrment_sql.state import StateStore
        store = StateStore.open({str(path)!r}, {PRINT!r})
        store.con.execute("BEGIN TRANSACTION")
        store.set("watermark", "after")
        store.con.execute(f"CREATE TABLE {{store.table('big')}} AS SELECT range AS x FROM range(3000000)")
        print("writing", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with StateStore.open(path, PRINT, lock_timeout=5) as store:
        assert store.get("watermark") == "before"
        assert not store.has_table("big")


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = textwrap.dedent(
        f"""
        import time
        from xpyrment_sql.state import StateStore
        with StateStore.open({str(path)!r}, {PRINT!r}):
            print("holding", flush=True)
            time.sleep({seconds})
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, cwd=ROOT)
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
        assert str(path) in str(info.value)
        assert f"process {child.pid}" in str(info.value)
    finally:
        child.kill()
        child.wait(timeout=30)


def test_files_that_are_not_state_files_are_refused_by_name(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database")
    with pytest.raises(StateError, match=r"notes\.txt cannot be opened as a DuckDB database"):
        StateStore.open(garbage, PRINT)
    foreign = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE exposures AS SELECT 1 AS unit_id")
    with pytest.raises(StateError, match=r"warehouse\.duckdb is a DuckDB database but not a state file"):
        StateStore.open(foreign, PRINT)
    with duckdb.connect(str(foreign)) as con:
        assert con.execute("SELECT count(*) FROM exposures").fetchone() == (1,)


def test_the_lock_is_released_when_opening_fails(tmp_path):
    path = tmp_path / "state.duckdb"
    StateStore.open(path, PRINT).close()
    with pytest.raises(StateMismatchError):
        StateStore.open(path, {**PRINT, "freq": "D"})
    StateStore.open(path, PRINT, lock_timeout=0.2).close()
    assert os.path.exists(f"{path}.lock")
