"""The traffic matrix query: distinct units per (bin, variant), active and first exposed, in one query;
optionally with the seed's SPRT first crossing, found by one ordered window over the first exposures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec, Chunk
from xpyrment_sql.queries.rows import bin_key, exposures, instant, union_all
from xpyrment_sql.source import Source


def traffic_counts(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None = None,
    chunks: Sequence[Chunk] = ((None, None),),
    exact: bool = True,
    sprt: SprtSpec | None = None,
    max_rows: int | None = None,
) -> ir.Table:
    """Distinct units per (bin, variant): ``active`` (seen in the bin) and ``new`` (first seen there).

    ``active`` deduplicates (bin, variant, unit) triples, one time chunk at a time (``UNION ALL`` of
    per-chunk aggregates; see ``bins.time_chunks``), then counts them per (bin, variant). ``new`` takes
    each (variant, unit) pair's first exposure (one grouped minimum) and counts pairs per first bin.
    Every (bin, variant) with a new unit also has an active one, so a left join completes the table.
    No window functions: the query runs on engines without them. With ``exact=False`` the active
    count is the backend's HyperLogLog estimate per (bin, variant) instead, with no deduplication.

    With ``sprt``, the first exposures also pass through one ordered window that finds the SPRT's
    first crossing (see :func:`_first_exposures_with_crossings` for the columns it adds): the same
    grouped minimum feeds both, so the seed's test costs one sort of the first exposures and no
    second scan of the log.

    With ``max_rows``, at most ``max_rows + 1`` rows come back: enough for the caller to refuse a
    matrix that is too large (a wrong column) without fetching all of it.
    """
    rows = exposures(source, variant_col, until)
    if exact:
        active = active_units(rows, bins, until, chunks)
    else:
        binned = rows.mutate(bin=bin_key(rows.ts, bins, until))
        active = binned.group_by(["bin", "variant"]).aggregate(active=binned.unit.approx_nunique())
    firsts = rows.group_by(["variant", "unit"]).aggregate(first_ts=rows.ts.min())
    if sprt is None:
        firsts = firsts.select(bin=bin_key(firsts.first_ts, bins, until), variant=firsts.variant)
        new = firsts.group_by(["bin", "variant"]).aggregate(new=firsts.count())
    else:
        new = _first_exposures_with_crossings(firsts, bins, until, sprt)
    joined = active.left_join(new, ["bin", "variant"])
    extra = [name for name in new.columns if name not in ("bin", "variant", "new")]
    counts = joined.select("bin", "variant", "active", *extra, new=ibis.coalesce(joined.new, 0))
    return counts.limit(max_rows + 1) if max_rows is not None else counts


def active_units(
    rows: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    chunks: Sequence[Chunk] = ((None, None),),
) -> ir.Table:
    """Exact distinct units per (bin, variant), deduplicating one time chunk at a time."""
    per_chunk = []
    for since, before in chunks:
        bounds = [rows.ts >= instant(rows.ts, since)] if since is not None else []
        bounds += [rows.ts < instant(rows.ts, before)] if before is not None else []
        part = rows.filter(*bounds) if bounds else rows
        key = bin_key(part.ts, bins, until)
        triples = part.group_by(bin=key, variant=part.variant, unit=part.unit).aggregate()
        per_chunk.append(triples.group_by(["bin", "variant"]).aggregate(active=triples.count()))
    return union_all(per_chunk)


@dataclasses.dataclass(frozen=True)
class SprtSpec:
    """The two-arm SPRT whose first crossing the traffic matrix query finds, in the same pass.

    The sequence holds each (variant, unit) pair at its first exposure, ordered by time, then unit id,
    then variant. ``y = 1`` for pairs whose variant is not the *reference* variant (``MIN(variant)``,
    a scalar subquery), so the query needs no variant name before it runs. Swapping the two arms and
    ``p0 -> 1 - p0`` leaves the mixture LR unchanged, so testing ``y`` with ``p0`` = the designed share
    of the non-reference arm is the seed's test; that share is known only once the variants are, so
    the query finds a crossing for each candidate share and the caller keeps the one that applies.

    Attributes:
        coefficients: Per candidate share, the per-unit increments ``(a_up, b_up, a_dn, b_dn)``
            (see :func:`xpyrment_sql.stats.srm.sprt_coefficients`).
        log_threshold: ``log(1/alpha)``; the test stops at the first unit whose ``log LR`` reaches it.
    """

    coefficients: tuple[tuple[float, float, float, float], ...]
    log_threshold: float


def _first_exposures_with_crossings(
    firsts: ir.Table, bins: BinSpec, until: pd.Timestamp | None, sprt: SprtSpec
) -> ir.Table:
    """New units per (bin, variant), with each bin's first SPRT crossing per candidate share.

    One ordered window over the first exposures gives ``n`` (position, 1-based) and ``k`` (running
    count of ``y``). With a candidate's ``(a_up, b_up, a_dn, b_dn)``,
    ``log L(up) = k*a_up + (n-k)*b_up``, ``log L(down) = k*a_dn + (n-k)*b_dn`` and
    ``log LR = log(0.5) + m + log(1 + exp(-|up - down|))`` with ``m = max(up, down)``, the overflow-free
    form of ``0.5*exp(up) + 0.5*exp(down)``. Counts are DOUBLE, so no engine does the arithmetic in
    DECIMAL (DuckDB multiplies a HUGEINT running sum by a decimal literal 50 times slower).

    Returns:
        Columns ``bin``, ``variant``, ``new``, ``other`` (1.0 when the variant is not the reference)
        and, for candidate ``i``, ``stop_n{i}`` (smallest ``n`` in the bin whose ``log LR`` crosses) and
        ``stop_ts{i}`` (that pair's first exposure): null where the bin holds no crossing.
    """
    reference = firsts.variant.min().as_scalar()
    flagged = firsts.mutate(y=ibis.ifelse(firsts.variant != reference, 1, 0).cast("float64"))
    order = ibis.window(
        order_by=[flagged.first_ts, flagged.unit, flagged.variant], preceding=None, following=0
    )
    steps = flagged.mutate(
        bin=bin_key(flagged.first_ts, bins, until),
        n=(ibis.row_number().over(order) + 1).cast("float64"),
        k=flagged.y.sum().over(order),
    )
    crossings = {}
    for i, coefficients in enumerate(sprt.coefficients):
        a_up, b_up, a_dn, b_dn = (ibis.literal(c, type="float64") for c in coefficients)
        up = steps.k * a_up + (steps.n - steps.k) * b_up
        down = steps.k * a_dn + (steps.n - steps.k) * b_dn
        log_lr = ibis.greatest(up, down) + ((up - down).abs().negate().exp() + 1).ln() + math.log(0.5)
        crosses = log_lr >= sprt.log_threshold
        crossings[f"stop_n{i}"] = ibis.ifelse(crosses, steps.n, ibis.null("float64")).min()
        at = ibis.ifelse(crosses, steps.first_ts, ibis.null(steps.first_ts.type()))
        crossings[f"stop_ts{i}"] = at.min()
    return steps.group_by(["bin", "variant"]).aggregate(new=steps.count(), other=steps.y.max(), **crossings)
