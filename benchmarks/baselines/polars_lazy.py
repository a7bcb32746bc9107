"""Polars lazy baseline: exact semantics, written as a Polars user would, tuned for speed.

One ``collect_all`` shares a single projected Parquet scan between the two aggregations it needs:
distinct (bin, variant, unit) triples counted per (bin, variant) for the active matrix, and each
(unit, variant) pair's first exposure time. First-exposure counts per bin come from the pairs; the SPRT
sorts only the pairs first seen in the bins that can hold its first crossing (bounded from the counts).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from benchmarks.baselines.common import Bins, SearchWindow, cli, dense, exact_output, parse_freq


def _key(expr: pl.Expr, bins: Bins) -> pl.Expr:
    """``floor((epoch_seconds + origin) / width)`` on microseconds, integer-only (``//`` floors)."""
    return (expr.dt.epoch("us") + bins.origin * 1_000_000) // (bins.width * 1_000_000)


def run(path: str, freq: str, ratios: list[float]) -> dict[str, Any]:
    """Traffic matrix, anomaly, chi-square and SPRT over the Parquet log at ``path`` with Polars."""
    bins = parse_freq(freq)
    rows = (
        pl.scan_parquet(path)
        .select("unit_id", "variant", "ts")
        .drop_nulls()
        .with_columns(bin=_key(pl.col("ts"), bins))
    )
    active_q = rows.group_by("bin", "variant").agg(active=pl.col("unit_id").n_unique())
    pairs_q = rows.group_by("unit_id", "variant").agg(
        first_ts=pl.col("ts").min(), first_bin=pl.col("bin").min()
    )
    active, pairs = pl.collect_all([active_q, pairs_q])
    new = pairs.group_by("first_bin", "variant").len()
    counts = active.join(new, left_on=["bin", "variant"], right_on=["first_bin", "variant"], how="left")
    first_key, variants, (active_m, new_m) = dense(
        counts["bin"].to_numpy(),
        counts["variant"].to_list(),
        [counts["active"].to_numpy(), counts["len"].fill_null(0).to_numpy()],
    )

    def crossing(window: SearchWindow) -> int:
        sequence = (
            pairs.filter(pl.col("first_bin").is_between(window.first_key, window.last_key))
            .sort("first_ts", "unit_id", "variant")
            .select(y=(pl.col("variant") == window.treatment).cast(pl.Int8))
        )
        y = sequence["y"].to_numpy()
        return window.test.first_crossing(y, window.treatment_before, window.units_before)

    return exact_output("polars_lazy", freq, bins, first_key, variants, active_m, new_m, ratios, crossing)


if __name__ == "__main__":
    cli(run)
