"""The local state file: what past runs learned, kept in a DuckDB database the user names.

The file is attached to the embedded DuckDB the checks run on (``ATTACH '<file>' AS xpyrment_state``),
so state tables are read and written next to the rows and nothing per-row crosses into Python. It is
never the user's database.

* **Fingerprint.** A ``meta`` table records what the state was built from (source, columns, bin size,
  zone, format). Opening it with another fingerprint is refused with :class:`StateMismatchError`,
  naming the file and every key that differs, unless ``refresh=True`` rebuilds it.
* **Lock.** An exclusive ``flock`` on ``<file>.lock`` (left on disk, holding the owner's pid and start
  time) keeps two runs from writing at once; the second waits up to ``lock_timeout`` seconds, then
  raises :class:`StateLockedError` saying who holds it.
* **Atomic writes.** Changes happen inside :meth:`StateStore.transaction`: DuckDB commits the
  transaction through its write-ahead log, so a crash or a full disk mid-write leaves the previous
  state as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import duckdb

from xpyrment_sql.errors import XpyrmentError

FORMAT = "1"
"""Version of the ``meta`` table's layout."""

_POLL_SECONDS = 0.1


class StateError(XpyrmentError):
    """A state file cannot be used (not a state file, unreadable, or behind the data)."""


class StateMismatchError(StateError):
    """A state file was built from another source, columns, bin size, zone or format."""


class StateLockedError(StateError):
    """Another run holds the state file's lock."""


class StateStore:
    """An open state file, attached to a DuckDB connection and locked for this process.

    Attributes:
        path: The state file.
        alias: The catalog name the file is attached as on ``con``.
        con: The connection the file is attached to (the embedded engine's, or a private one).
        is_new: True when no earlier state existed (the file was created now, or ``refresh`` wiped it).
    """

    def __init__(self, path: Path, alias: str, con: duckdb.DuckDBPyConnection, lock: IO[str]) -> None:
        self.path = path
        self.alias = alias
        self.con = con
        self.is_new = False
        self._lock: IO[str] | None = lock

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        fingerprint: Mapping[str, str],
        *,
        con: duckdb.DuckDBPyConnection | None = None,
        refresh: bool = False,
        lock_timeout: float = 60.0,
        alias: str = "xpyrment_state",
    ) -> StateStore:
        """Lock, attach and check the state file at ``path`` (created when missing).

        Raises:
            StateLockedError: another run held the lock for ``lock_timeout`` seconds.
            StateError: the file is not a state file of this library.
            StateMismatchError: the file was built with another fingerprint (and ``refresh`` is False).
        """
        target = Path(path)
        lock = _acquire(target, lock_timeout)
        store = cls(target, alias, con if con is not None else duckdb.connect(), lock)
        try:
            existed = target.exists() and target.stat().st_size > 0
            quoted = str(target).replace("'", "''")
            try:
                store.run(f"ATTACH '{quoted}' AS \"{alias}\"")
            except duckdb.Error as exc:
                raise StateError(
                    f"state file {target} cannot be opened as a DuckDB database: {exc}"
                ) from None
            store._check(fingerprint, existed, refresh)
        except BaseException:
            store.close()
            raise
        return store

    def run(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement on the attached connection and fetch its result (rows it returns are
        small: counts, meta values), so no result is left open on the connection."""
        return self.con.execute(sql, list(parameters)).fetchall()

    def get(self, key: str) -> str | None:
        """A value of the ``meta`` table (``None`` when unset)."""
        rows = self.run(f"SELECT value FROM {self.table('meta')} WHERE key = ?", [key])
        return str(rows[0][0]) if rows else None

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` in the ``meta`` table (call inside :meth:`transaction`)."""
        self.run(f"DELETE FROM {self.table('meta')} WHERE key = ?", [key])
        self.run(f"INSERT INTO {self.table('meta')} VALUES (?, ?)", [key, value])

    def table(self, name: str) -> str:
        """The quoted SQL name of the state table ``name``."""
        return f'"{self.alias}"."main"."{name}"'

    def has_table(self, name: str) -> bool:
        """Whether the state file holds a table called ``name``."""
        found = self.run(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
            [self.alias, name],
        )
        return bool(found[0][0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all (ROLLBACK, then re-raise, on any error)."""
        self.run("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.run("ROLLBACK")
            raise
        self.run("COMMIT")

    def close(self) -> None:
        """Checkpoint and detach the file, then release the lock; safe to call twice."""
        if self._lock is None:
            return
        with contextlib.suppress(duckdb.Error):
            self.run(f'CHECKPOINT "{self.alias}"')
        with contextlib.suppress(duckdb.Error):
            self.run(f'DETACH "{self.alias}"')
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self, fingerprint: Mapping[str, str], existed: bool, refresh: bool) -> None:
        """Refuse a foreign or mismatched file; start anew when it is new or ``refresh`` is asked."""
        if existed and not self.has_table("meta"):
            raise StateError(f"{self.path} is a DuckDB database but not a state file of this library")
        if existed and not refresh:
            stored = self._stored_fingerprint()
            wanted = {"store": FORMAT, **fingerprint}
            keys = stored.keys() | wanted.keys()
            differ = sorted(key for key in keys if stored.get(key) != wanted.get(key))
            if differ:
                shown = "; ".join(
                    f"{k}: {stored.get(k)!r} in the file, {wanted.get(k)!r} now"
                    for k in differ
                )
                raise StateMismatchError(
                    f"state file {self.path} was built for other settings ({shown}); rebuild it with "
                    "refresh=True (--full-refresh on the command line) or name another file"
                )
            return
        self.is_new = True
        with self.transaction():
            for (name,) in self.run(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [self.alias]
            ):
                self.run(f"DROP TABLE {self.table(name)}")
            self.run(f"CREATE TABLE {self.table('meta')} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            for key, value in {"store": FORMAT, **fingerprint}.items():
                self.set(f"fingerprint.{key}", value)

    def _stored_fingerprint(self) -> dict[str, str]:
        rows = self.run(f"SELECT key, value FROM {self.table('meta')} WHERE key LIKE 'fingerprint.%'")
        return {str(key).removeprefix("fingerprint."): str(value) for key, value in rows}


def _acquire(path: Path, timeout: float) -> IO[str]:
    """An exclusive lock on ``<path>.lock``, waiting up to ``timeout`` seconds for another run."""
    lock_path = path.with_name(path.name + ".lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for as long as the store is
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "another run"
                handle.close()
                raise StateLockedError(
                    f"state file {path} is in use by {holder}; waited {timeout:g} s for its lock "
                    f"({lock_path}). Wait for that run to finish, or stop it"
                ) from None
            time.sleep(_POLL_SECONDS)
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    handle.flush()
    return handle
