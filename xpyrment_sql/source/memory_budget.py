"""A user's memory budget for the embedded engine, and the share of it DuckDB's buffer manager gets.

DuckDB's ``memory_limit`` governs its buffer manager: hash tables, sorts and spilled partitions.
Some allocations sit outside it (parsed Parquet footers, decompression buffers, the allocator's own
slack), and the Python process around it holds the interpreter, Ibis, pandas and numpy (about
250 MB). Measured on a 1e9-row log, ``memory_limit="8GB"`` passed straight to DuckDB peaked at
8.7 GB of resident memory, and DuckDB given 7.2 GB peaked at 8.07 GB (the SPRT's window over 190M
first exposures spilling); on a 1e8-row log DuckDB given 0.73 GB peaked at 1.09 GB. So a budget ``M``
gives DuckDB ``M - max(0.15 * M, 384 MiB)``, never less than half of ``M``: what the user sets is
what the whole process should stay within.
"""

from __future__ import annotations

import re

from xpyrment_sql.errors import ParameterError

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_RESERVE_SHARE = 0.15
_RESERVE_FLOOR = 384 * 2**20


def parse_bytes(size: str, name: str = "memory_limit") -> int:
    """``"8GB"`` -> 8_000_000_000, ``"512MiB"`` -> 536_870_912 (DuckDB's units: KB = 1000, KiB = 1024).

    Raises:
        ParameterError: ``size`` is not a positive number with an optional unit.
    """
    match = _SIZE.match(str(size))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise ParameterError(
            f"{name}={size!r} is not a memory size; expected a positive number with a unit such as "
            "'8GB', '512MB' or '4GiB'"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def duckdb_share(budget: str) -> str:
    """DuckDB's ``memory_limit`` for a process budget of ``budget``, as a byte count (``"6800000000B"``).

    ``share = M - max(0.15 * M, 384 MiB)``, at least ``M / 2``.
    """
    total = parse_bytes(budget)
    share = max(total - max(int(total * _RESERVE_SHARE), _RESERVE_FLOOR), total // 2)
    return f"{share}B"
