"""The user's memory budget: parsed as DuckDB parses sizes, and DuckDB's share of it."""

from __future__ import annotations

import pytest

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.source.memory_budget import duckdb_share, parse_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8GB", 8 * 10**9),
        ("8 gb", 8 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2TB", 2 * 10**12),
        ("4096", 4096),
        ("100KB", 100_000),
    ],
)
def test_sizes_parse_with_decimal_and_binary_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1GB", "0GB", "8XB", "", "GB"])
def test_a_size_that_is_not_one_names_the_parameter(text):
    with pytest.raises(ParameterError, match=r"memory_limit=.* is not a memory size; expected"):
        parse_bytes(text)


@pytest.mark.parametrize(
    ("budget", "share"),
    [
        ("8GB", 8 * 10**9 - 12 * 10**8),  # 15% held back
        ("1GB", 10**9 - 384 * 2**20),  # at least 384 MiB held back
        ("300MB", 150 * 10**6),  # never less than half
    ],
)
def test_duckdb_gets_the_budget_less_a_reserve(budget, share):
    assert duckdb_share(budget) == f"{share}B"
