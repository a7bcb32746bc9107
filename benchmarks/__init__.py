"""Benchmark suite: xpyrment_sql against the seed's pandas code and hand-written Polars and DuckDB."""
