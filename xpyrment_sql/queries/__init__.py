"""Ibis expressions, and nothing else: every reduction that touches rows is built here.

Each builder returns an unexecuted expression whose result is small (bins x variants rows, or one row).
Executing happens in :meth:`xpyrment_sql.source.Source.execute`; statistics happen in ``stats/``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec, Chunk, utc_offsets
from xpyrment_sql.source import Source


def exposures(
    source: Source,
    variant_col: str,
    until: pd.Timestamp | None = None,
    extra: Mapping[str, str] | None = None,
) -> ir.Table:
    """Rows reduced to ``(ts, variant, unit)``; rows missing one, or at or after ``until``, are dropped.

    ``until`` is the evaluation instant: bins are half-open ``[start, end)``, and a row stamped exactly
    at ``until`` would belong to a bin that does not exist yet. ``extra`` maps further output names to
    source columns (kept as they are, nulls included).
    """
    table = source.table
    ts = source.timestamp()
    kept = {name: table[column] for name, column in (extra or {}).items()}
    rows = table.select(ts=ts, variant=table[variant_col], unit=table[source.unit_col], **kept)
    keep = rows.ts.notnull() & rows.variant.notnull() & rows.unit.notnull()
    if until is not None:
        keep &= before(rows.ts, until)
    return rows.filter(keep)


def bin_key(ts: ir.TimestampValue, bins: BinSpec, until: pd.Timestamp | None) -> ir.IntegerValue:
    """``floor((epoch + utc_offset(epoch) + origin) / width)`` as a backend expression (see ``bins``)."""
    epoch = ts.epoch_seconds()
    shifted = epoch + bins.origin if bins.origin else epoch
    if bins.uses_local_offset:
        shifted = shifted + _utc_offset(epoch, bins.tz, until)
    return (shifted / bins.width).floor().cast("int64")


def _utc_offset(epoch: ir.IntegerValue, tz: str, until: pd.Timestamp | None) -> ir.IntegerValue:
    """The zone's offset at ``epoch`` as a CASE over its transitions, newest first.

    Recent rows match the first branch, so the cost per row is one or two comparisons.
    """
    end = until if until is not None else pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=366)
    steps = utc_offsets(tz, end)
    case = ibis.cases(
        *((epoch >= since, offset) for since, offset in reversed(steps[1:])),
        else_=steps[0][1],
    )
    return case.cast("int64")


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
        active = _active_units(rows, bins, until, chunks)
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


def _active_units(
    rows: ir.Table, bins: BinSpec, until: pd.Timestamp | None, chunks: Sequence[Chunk]
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
    return _union_all(per_chunk)


def _union_all(tables: Sequence[ir.Table]) -> ir.Table:
    """``UNION ALL`` of ``tables`` as a balanced tree, so hundreds of chunks stay shallow to compile."""
    if len(tables) == 1:
        return tables[0]
    middle = len(tables) // 2
    return _union_all(tables[:middle]).union(_union_all(tables[middle:]))


def units_per_variant(source: Source, variant_col: str, until: pd.Timestamp | None = None) -> ir.Table:
    """``COUNT(DISTINCT unit)`` per variant: the cumulative traffic at the last bin, without bins."""
    rows = exposures(source, variant_col, until)
    return rows.group_by("variant").aggregate(units=rows.unit.nunique())


def multiple_exposure_counts(source: Source, variant_col: str, until: pd.Timestamp | None = None) -> ir.Table:
    """Units seen under more than one variant, with the units each pair of variants shares: one query.

    From the distinct (variant, unit) pairs, a grouped count per unit gives the distinct ``units``
    and the ``multiple`` ones (two or more variants). Only the multiple units' pairs are joined with
    themselves on ``unit``, kept where ``first_variant < second_variant`` (a filter after an equality
    join, which engines without inequality join predicates, such as Polars, can run) and counted
    per pair of variants.
    The totals are left-joined to the pair counts on ``TRUE``, so one row comes back even when no
    unit is shared.

    Returns:
        Columns ``units``, ``multiple`` (repeated on every row), ``first_variant``,
        ``second_variant``, ``pair_units`` (null when no unit is shared): one row per pair.
    """
    rows = exposures(source, variant_col, until)
    pairs = rows.select("variant", "unit").distinct()
    per_unit = pairs.group_by("unit").aggregate(variants=pairs.count())
    totals = per_unit.aggregate(
        units=per_unit.count(), multiple=ibis.ifelse(per_unit.variants > 1, 1, 0).sum()
    )
    shared = pairs.join(per_unit.filter(per_unit.variants > 1).select("unit"), "unit")
    other = shared.view()
    both = shared.join(other, "unit")
    both = both.filter(both.variant < both.variant_right)
    per_pair = both.group_by(first_variant=both.variant, second_variant=both.variant_right).aggregate(
        pair_units=both.count()
    )
    return totals.left_join(per_pair, ibis.literal(True)).select(
        "units", "multiple", "first_variant", "second_variant", "pair_units"
    )


def segment_units(
    source: Source,
    variant_col: str,
    dimension_cols: Sequence[str],
    until: pd.Timestamp | None = None,
) -> ir.Table:
    """Distinct units per (segment, variant), per variant overall and per (dimension, variant): one query.

    A segment is a combination of dimension values. The distinct (segment, variant, unit) triples are
    grouped once; every count is a ``COUNT(*)`` of distinct tuples taken from them, and the parts are
    stacked with ``UNION ALL``, each row marked by ``part``:

    * ``"segment"``: units per (segment, variant);
    * ``"overall"``: units per variant (the dimension columns null), the counts of ``check_live_srm``:
      a unit seen in two segments counts once here and once in each segment;
    * ``"dim{j}"``, with two or more dimensions only: units per (value of dimension ``j``, variant),
      the other dimension columns null.

    Dimensions are renamed ``dim0, dim1, ...`` inside the query, so a dimension called ``unit`` or
    ``variant`` cannot collide with the reduced columns. Null dimension values form their own segment.

    Returns:
        Columns ``part``, ``dim0 .. dim{d-1}``, ``variant``, ``units``.
    """
    names = [f"dim{i}" for i in range(len(dimension_cols))]
    rows = exposures(source, variant_col, until, dict(zip(names, dimension_cols, strict=True)))
    triples = rows.group_by([*names, "variant", "unit"]).aggregate()
    nulls = {name: ibis.null(triples[name].type()) for name in names}

    def part(label: str, keys: Sequence[str]) -> ir.Table:
        tuples = triples if len(keys) == len(names) else triples.select(*keys, "variant", "unit").distinct()
        counts = tuples.group_by([*keys, "variant"]).aggregate(units=tuples.count())
        dims = {name: counts[name] if name in keys else nulls[name] for name in names}
        return counts.select(part=ibis.literal(label), **dims, variant=counts.variant, units=counts.units)

    parts = [part("segment", names), part("overall", [])]
    if len(names) > 1:
        parts += [part(name, [name]) for name in names]
    return _union_all(parts)


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


def before(ts: ir.TimestampValue, until: pd.Timestamp) -> ir.BooleanValue:
    """``ts < until``: the rows that exist at the evaluation instant ``until``."""
    return ts < instant(ts, until)


def instant(column: ir.TimestampValue, when: pd.Timestamp) -> ir.TimestampScalar:
    """A literal for the aware instant ``when``, typed like ``column`` (naive columns hold UTC)."""
    zone = column.type().timezone
    value = when.tz_convert(zone) if zone else when.tz_convert("UTC").tz_localize(None)
    return ibis.literal(value, type=column.type())
