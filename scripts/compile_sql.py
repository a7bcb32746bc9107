"""Regenerate ``sql/<dialect>/<query>.sql``: every check's query compiled for every dialect.

Run after changing a query builder: ``python scripts/compile_sql.py`` (the pyspark dialect needs the
``pyspark`` extra installed). Files for queries that no longer exist are removed. The test suite fails
while the files differ from what the code compiles.
"""

from __future__ import annotations

from pathlib import Path

from xpyrment_sql.checks.plans import check_queries
from xpyrment_sql.queries.sql import DIALECTS, example_source

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def main() -> None:
    """Write one file per (dialect, query) for the example schema, at hourly bins."""
    source = example_source()
    for dialect in DIALECTS:
        folder = SQL_DIR / dialect
        folder.mkdir(parents=True, exist_ok=True)
        compiled = check_queries(source, dialect, freq="h")
        for stale in folder.glob("*.sql"):
            if stale.stem not in compiled:
                stale.unlink()
        for name, sql in compiled.items():
            (folder / f"{name}.sql").write_text(sql)


if __name__ == "__main__":
    main()
