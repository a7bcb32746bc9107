"""The checked-in SQL matches what the code compiles, for every dialect."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpyrment_sql.checks.plans import check_queries
from xpyrment_sql.queries.sql import DIALECTS, example_source

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_checked_in_sql_is_what_the_code_compiles(dialect):
    compiled = check_queries(example_source(), dialect, freq="h")
    on_disk = {path.stem: path.read_text() for path in (SQL_DIR / dialect).glob("*.sql")}
    assert set(on_disk) == set(compiled), "run scripts/compile_sql.py"
    for name, sql in compiled.items():
        assert on_disk[name] == sql, f"sql/{dialect}/{name}.sql is stale: run scripts/compile_sql.py"


def test_every_query_names_the_check_it_serves():
    for sql in check_queries(example_source(), "postgres").values():
        assert sql.startswith("-- ")
        assert "SELECT" in sql
