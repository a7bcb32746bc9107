"""The local state file: what past runs learned, kept in a DuckDB database the user names.

The file is attached to the embedded DuckDB the checks run on (``ATTACH '<file>' AS xpyrment_state``),
so state tables are read and written next to the rows and nothing per-row crosses into Python. It is
never the user's database: a DuckDB file holding tables but no ``meta`` table is refused, even with
``refresh=True``.

* **Fingerprint.** A ``meta`` table records the state format and what the state was built from
  (source, columns, bin size, zone). Opening it with another fingerprint is refused with
  :class:`StateMismatchError`, naming the file and every key that differs, unless ``refresh=True``
  rebuilds it.
* **Lock.** One run at a time per file (:mod:`xpyrment_sql.state.lock`): a second run waits up to
  ``lock_timeout`` seconds, then raises :class:`StateLockedError` saying which process holds it.
* **Atomic writes.** Changes happen inside :meth:`StateStore.transaction`. DuckDB commits through its
  write-ahead log and checkpoints by writing new blocks before switching the header, so a crash, a
  kill or a full disk mid-write leaves the last committed state.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import duckdb

from xpyrment_sql.state.errors import StateError, StateMismatchError
from xpyrment_sql.state.lock import acquire, release

FORMAT = "2"
"""Version of the ``meta`` layout (format 1 kept it among the fingerprint keys)."""

PREFIX = "fingerprint."
"""``meta`` keys holding the fingerprint; every other key is the caller's (``watermark``, ...)."""

_REBUILD = "rebuild it with refresh=True (--full-refresh on the command line) or name another file"


class StateStore:
    """An open state file, attached to a DuckDB connection and locked for this process.

    Attributes:
        path: The state file.
        alias: The catalog name the file is attached as on ``con``.
        con: The connection the file is attached to (the embedded engine's, or a private one).
        is_new: True when no earlier state existed (the file was created now, or ``refresh`` wiped it).

    Examples:
        >>> import pathlib, tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = pathlib.Path(folder.name) / "state.duckdb"
        >>> built_from = {"source": "exposures.parquet", "freq": "h"}
        >>> with StateStore.open(path, built_from) as store, store.transaction():
        ...     store.set("watermark", "2026-01-05T10:00:00+00:00")
        >>> with StateStore.open(path, built_from) as store:
        ...     store.is_new, store.get("watermark"), store.table("bin_counts")
        (False, '2026-01-05T10:00:00+00:00', '"xpyrment_state".main."bin_counts"')
        >>> try:
        ...     StateStore.open(path, {**built_from, "freq": "D"})
        ... except StateError as error:
        ...     print(type(error).__name__, "-", str(error).split("(")[1].split(")")[0])
        StateMismatchError - freq: 'h' in the file, 'D' now
        >>> folder.cleanup()
    """

    def __init__(self, path: Path, alias: str, con: duckdb.DuckDBPyConnection, *, owns_con: bool) -> None:
        self.path = path
        self.alias = alias
        self.con = con
        self.is_new = False
        self._owns_con = owns_con
        self._lock: IO[str] | None = None
        self._attached = False
        self._depth = 0
        self._inner_failed = False

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

        Args:
            path: The state file (a DuckDB database this library created, or a path to create one at).
            fingerprint: What the state is built from; stored on creation, compared on every open.
            con: The DuckDB connection to attach the file to; a private in-memory one when ``None``.
            refresh: Drop every table of an existing state file and start anew.
            lock_timeout: Seconds to wait for another run's lock before giving up.
            alias: The catalog name of the file on ``con``.

        Raises:
            StateLockedError: another run held the lock for ``lock_timeout`` seconds.
            StateError: the file cannot be opened, or is a DuckDB database but not a state file.
            StateMismatchError: the file was built with another fingerprint or format (and ``refresh``
                is False).
        """
        target = Path(path)
        store = cls(target, alias, con if con is not None else duckdb.connect(), owns_con=con is None)
        try:
            store._lock = acquire(target, lock_timeout)
            attached = store.run("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [alias])
            if attached[0][0]:
                raise StateError(
                    f"cannot attach the state file {target} as {alias!r}: the connection already has a "
                    "database of that name (is another state store open on it?)"
                )
            try:
                store.run(f"ATTACH {_literal(str(target))} AS {quote(alias)} (TYPE duckdb)")
                store._attached = True
            except duckdb.Error as exc:
                raise StateError(
                    f"state file {target} cannot be opened as a DuckDB database: {exc}"
                ) from None
            store._check(fingerprint, refresh)
        except BaseException:
            store.close()
            raise
        return store

    def run(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement on ``con`` and fetch its result (small: counts, meta values), so no
        result is left open on the connection."""
        return self.con.execute(sql, list(parameters)).fetchall()

    def get(self, key: str) -> str | None:
        """The value stored under ``key`` in the ``meta`` table (``None`` when unset)."""
        rows = self.run(f"SELECT value FROM {self.table('meta')} WHERE key = ?", [key])
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` in the ``meta`` table (one statement; call it inside
        :meth:`transaction` so it commits with the tables it describes)."""
        self.run(f"INSERT OR REPLACE INTO {self.table('meta')} VALUES (?, ?)", [key, value])

    def table(self, name: str) -> str:
        """The quoted SQL name of the state table ``name``: ``"<alias>".main."<name>"``."""
        return f"{quote(self.alias)}.main.{quote(name)}"

    def name(self, table: str) -> str:
        """The unquoted name the state table ``table`` has in the file (see :class:`StateScope`)."""
        return table

    def scope(self, prefix: str) -> StateScope:
        """A namespace of this file: meta keys and tables named ``<prefix>.<name>``."""
        return StateScope(self, prefix)

    def has_table(self, name: str) -> bool:
        """Whether the state file holds a table called ``name``."""
        found = self.run(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
            "AND table_name = ?",
            [self.alias, name],
        )
        return bool(found[0][0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all.

        Any exception rolls back and is re-raised. A nested ``transaction()`` joins the outer one
        (DuckDB has no savepoints), so an exception leaving an inner block dooms the outer block even
        when caught in between. A failed statement whose error was caught aborts DuckDB's transaction
        and DuckDB's COMMIT would then silently discard it: that is raised as :class:`StateError`.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            except BaseException:
                self._inner_failed = True
                raise
            finally:
                self._depth -= 1
            return
        self.run("BEGIN TRANSACTION")
        self._depth, self._inner_failed = 1, False
        try:
            yield
            self._ensure_committable()
        except BaseException:
            self._depth = 0
            with contextlib.suppress(duckdb.Error):
                self.run("ROLLBACK")
            raise
        self._depth = 0
        try:
            self.run("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                self.run("ROLLBACK")
            raise StateError(
                f"writing the state file {self.path} failed, nothing was written: {exc}"
            ) from exc

    def close(self) -> None:
        """Checkpoint and detach the file, close a private connection, release the lock; safe twice."""
        if self._lock is None and not self._owns_con:
            return
        try:
            if self._depth:
                with contextlib.suppress(duckdb.Error):
                    self.run("ROLLBACK")
                self._depth = 0
            if self._attached:
                with contextlib.suppress(duckdb.Error):
                    self.run(f"CHECKPOINT {quote(self.alias)}")
                with contextlib.suppress(duckdb.Error):
                    self.run(f"DETACH DATABASE IF EXISTS {quote(self.alias)}")
                self._attached = False
            if self._owns_con:
                self.con.close()
                self._owns_con = False
        finally:
            if self._lock is not None:
                release(self._lock)
                self._lock = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ensure_committable(self) -> None:
        """Raise instead of committing when an inner block failed or DuckDB aborted the transaction."""
        if self._inner_failed:
            raise StateError(
                f"an inner transaction on the state file {self.path} failed; nothing was written"
            )
        try:
            self.run("SELECT 1")
        except duckdb.Error as exc:
            raise StateError(
                f"a statement on the state file {self.path} failed inside a transaction, so nothing was "
                f"written: {exc}"
            ) from exc

    def _check(self, fingerprint: Mapping[str, str], refresh: bool) -> None:
        """Refuse a foreign or mismatched file; start anew when it is empty or ``refresh`` is asked."""
        objects = self.run(
            "SELECT 'TABLE', schema_name, table_name FROM duckdb_tables() WHERE database_name = $1 "
            "UNION ALL SELECT 'VIEW', schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = $1 AND NOT internal",
            [self.alias],
        )
        if objects and not self.has_table("meta"):
            raise StateError(
                f"{self.path} is a DuckDB database but not a state file of this library; it was left "
                "untouched: name a new file for the state"
            )
        if objects and not refresh:
            self._compare(fingerprint)
            return
        self.is_new = True
        with self.transaction():
            for kind, schema, name in sorted(objects, key=lambda item: item[0] != "VIEW"):
                self.run(f"DROP {kind} {quote(self.alias)}.{quote(schema)}.{quote(name)}")
            self.run(f"CREATE TABLE {self.table('meta')} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            self.set("format", FORMAT)
            for key, value in fingerprint.items():
                self.set(PREFIX + key, value)

    def _compare(self, fingerprint: Mapping[str, str]) -> None:
        """Raise :class:`StateMismatchError` unless the stored format and fingerprint are these."""
        stored_format = self.get("format")
        if stored_format != FORMAT:
            raise StateMismatchError(
                f"state file {self.path} has state format {stored_format or '1'}; this version of "
                f"xpyrment_sql reads format {FORMAT}: {_REBUILD}"
            )
        rows = self.run(f"SELECT key, value FROM {self.table('meta')} WHERE starts_with(key, ?)", [PREFIX])
        stored = {str(key).removeprefix(PREFIX): value for key, value in rows}
        wanted = dict(fingerprint)
        differ = sorted(key for key in stored.keys() | wanted.keys() if stored.get(key) != wanted.get(key))
        if differ:
            shown = "; ".join(
                f"{key}: {stored.get(key)!r} in the file, {wanted.get(key)!r} now" for key in differ
            )
            raise StateMismatchError(
                f"state file {self.path} was built for other settings ({shown}); {_REBUILD}"
            )


class StateScope:
    """A namespace of a state file: its own meta keys and tables, prefixed ``<prefix>.``.

    One file can then keep several independent incremental states that share its lock, fingerprint
    and transactions (a fleet keeps one per query plan, each with its own watermark and counts).
    """

    def __init__(self, store: StateStore, prefix: str) -> None:
        self._store = store
        self._prefix = f"{prefix}."

    @property
    def path(self) -> Path:
        """The state file."""
        return self._store.path

    @property
    def alias(self) -> str:
        """The catalog name the file is attached as."""
        return self._store.alias

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection the file is attached to."""
        return self._store.con

    @property
    def is_new(self) -> bool:
        """True when the file holds no earlier state of this scope's."""
        return self._store.is_new or self.get("watermark") is None

    def run(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement on the file's connection (see :meth:`StateStore.run`)."""
        return self._store.run(sql, parameters)

    def get(self, key: str) -> str | None:
        """The scope's value of ``key``."""
        return self._store.get(self._prefix + key)

    def set(self, key: str, value: str) -> None:
        """Store the scope's ``key``."""
        self._store.set(self._prefix + key, value)

    def name(self, table: str) -> str:
        """The unquoted name of the scope's table ``table``."""
        return self._prefix + table

    def table(self, name: str) -> str:
        """The quoted SQL name of the scope's table ``name``."""
        return self._store.table(self.name(name))

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """The file's transaction (see :meth:`StateStore.transaction`)."""
        return self._store.transaction()


def _literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (any name, even one holding a double quote)."""
    return '"' + identifier.replace('"', '""') + '"'
