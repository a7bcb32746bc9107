"""One module per implementation, each with ``run(path, freq, ratios) -> dict`` (see ``common``).

``EXACT`` implementations must agree on every checksum; ``pandas_seed`` keeps the seed's semantics
(compared on the binned active matrix and the anomaly test only) and ``xpyrment_approx`` counts active
units with HyperLogLog (compared on cumulative traffic and the SRM tests only).
"""

EXACT = ("xpyrment", "duckdb_sql", "polars_lazy")
SEED = ("pandas_seed",)
APPROX = ("xpyrment_approx",)
ALL = EXACT + SEED + APPROX
