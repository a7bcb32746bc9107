"""The embedded DuckDB that reads files and DataFrames, and the settings a user gives it.

Files and in-memory frames have no database of their own, so the library opens a private in-memory
DuckDB for them: the only database it ever creates objects in. Its memory limit is a share of the
user's budget (see ``memory_budget``) and it spills to a private folder removed at exit.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from typing import Any

import ibis

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.source.memory_budget import duckdb_share


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """Settings of the private embedded DuckDB that reads files and DataFrames.

    Attributes:
        memory_limit: The process's memory budget (e.g. ``"8GB"``); DuckDB's own ``memory_limit`` is
            set a little below it (see ``memory_budget``), and beyond that DuckDB spills to disk.
        threads: DuckDB ``threads``; default all cores.
        temp_directory: Where DuckDB spills; default a fresh private folder removed at exit.
        progress: Print DuckDB's progress bar on stderr for queries longer than two seconds.
    """

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None
    progress: bool = False


def embedded_duckdb(engine: EngineSettings) -> Any:
    """A private in-memory DuckDB: the only database this library ever creates objects in.

    Every query's result is small and placed by its keys (or ordered explicitly), so DuckDB need not
    preserve insertion order, which lets its operators stream and spill with less memory. Parquet
    footers are cached (and re-read when a file changes): the traffic matrix scans the log once per
    time chunk, and without the cache every scan keeps its own parsed copy of the footer outside
    ``memory_limit`` (at 1e8 rows in 168 chunks that alone doubled peak memory).

    Raises:
        ParameterError: DuckDB refused a setting.
    """
    spill = engine.temp_directory or _private_spill_folder()
    options = {
        "memory_limit": None if engine.memory_limit is None else duckdb_share(engine.memory_limit),
        "threads": engine.threads,
        "temp_directory": spill,
        "preserve_insertion_order": False,
    }
    try:
        backend = ibis.duckdb.connect(**{k: v for k, v in options.items() if v is not None})
    except Exception as exc:
        raise ParameterError(f"the DuckDB settings were refused: {exc}") from None
    backend.con.execute(f"SET enable_progress_bar = {str(engine.progress).lower()}")
    backend.con.execute("SET parquet_metadata_cache = true")
    return backend


def _private_spill_folder() -> str:
    folder = tempfile.mkdtemp(prefix="xpyrment-spill-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
