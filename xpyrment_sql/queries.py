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
    """Rows reduced to ``(ts, variant, unit)``; rows missing any of them, or after ``until``, are dropped.

    ``extra`` maps further output names to source columns (kept as they are, nulls included).
    """
    table = source.table
    ts = source.timestamp()
    kept = {name: table[column] for name, column in (extra or {}).items()}
    rows = table.select(ts=ts, variant=table[variant_col], unit=table[source.unit_col], **kept)
    keep = rows.ts.notnull() & rows.variant.notnull() & rows.unit.notnull()
    if until is not None:
        keep &= rows.ts <= instant(rows.ts, until)
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
) -> ir.Table:
    """Distinct units per (bin, variant): ``active`` (seen in the bin) and ``new`` (first seen there).

    ``active`` deduplicates (bin, variant, unit) triples, one time chunk at a time (``UNION ALL`` of
    per-chunk aggregates; see ``bins.time_chunks``), then counts them per (bin, variant). ``new`` takes
    each (variant, unit) pair's first exposure (one grouped minimum) and counts pairs per first bin.
    Every (bin, variant) with a new unit also has an active one, so a left join completes the table.
    No window functions: the query runs on engines without them. With ``exact=False`` the active
    count is the backend's HyperLogLog estimate per (bin, variant) instead, with no deduplication.
    """
    rows = exposures(source, variant_col, until)
    if exact:
        active = _active_units(rows, bins, until, chunks)
    else:
        binned = rows.mutate(bin=bin_key(rows.ts, bins, until))
        active = binned.group_by(["bin", "variant"]).aggregate(active=binned.unit.approx_nunique())
    firsts = rows.group_by(["variant", "unit"]).aggregate(first_ts=rows.ts.min())
    firsts = firsts.select(bin=bin_key(firsts.first_ts, bins, until), variant=firsts.variant)
    new = firsts.group_by(["bin", "variant"]).aggregate(new=firsts.count())
    joined = active.left_join(new, ["bin", "variant"])
    return joined.select("bin", "variant", "active", new=ibis.coalesce(joined.new, 0))


def _active_units(
    rows: ir.Table, bins: BinSpec, until: pd.Timestamp | None, chunks: Sequence[Chunk]
) -> ir.Table:
    """Exact distinct units per (bin, variant), deduplicating one time chunk at a time."""
    per_chunk = []
    for since, before in chunks:
        part = rows
        if since is not None:
            part = part.filter(part.ts >= instant(part.ts, since))
        if before is not None:
            part = part.filter(part.ts < instant(part.ts, before))
        triples = part.select(bin=bin_key(part.ts, bins, until), variant=part.variant, unit=part.unit)
        triples = triples.distinct()
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
    """``COUNT(DISTINCT unit)`` per (segment, variant); a segment is a combination of dimension values.

    Dimensions are renamed ``dim0, dim1, ...`` inside the query, so a dimension called ``unit`` or
    ``variant`` cannot collide with the reduced columns. Null dimension values form their own segment.
    A unit seen in two segments counts once in each.

    Returns:
        Columns ``dim0 .. dim{d-1}``, ``variant``, ``units``: one row per non-empty (segment, variant).
    """
    names = [f"dim{i}" for i in range(len(dimension_cols))]
    rows = exposures(source, variant_col, until, dict(zip(names, dimension_cols, strict=True)))
    return rows.group_by([*names, "variant"]).aggregate(units=rows.unit.nunique())


@dataclasses.dataclass(frozen=True)
class SequenceWindow:
    """The stretch of the first-exposure sequence an SPRT search has to look at.

    Attributes:
        since: Earliest first exposure to consider (start of the first bin that can cross).
        before: First exposures from here on are not needed (end of the last bin that can cross).
        units_before: Units whose first exposure precedes ``since`` (all variants).
        treatment_before: Treatment units among them.
    """

    since: pd.Timestamp
    before: pd.Timestamp
    units_before: int
    treatment_before: int


def first_sprt_crossing(
    source: Source,
    variant_col: str,
    treatment: object,
    coefficients: tuple[float, float, float, float],
    log_threshold: float,
    window: SequenceWindow,
    until: pd.Timestamp | None = None,
) -> ir.Table:
    """The first unit at which the two-point mixture SPRT crosses ``log(1/alpha)``: zero or one row.

    The sequence is each (variant, unit) pair at its first exposure, ordered by time with ties broken
    by unit id; ``y = 1`` for treatment. After ``n`` units of which ``k`` are treatment,
    ``log L(up) = k*a_up + (n-k)*b_up`` and ``log L(down) = k*a_dn + (n-k)*b_dn`` (``coefficients`` =
    ``(a_up, b_up, a_dn, b_dn)``), and ``log LR = log(0.5) + m + log(1 + exp(-|up - dn|))`` with
    ``m = max(up, dn)``, the overflow-free form of ``0.5*exp(up) + 0.5*exp(dn)``.

    Only the pairs first seen inside ``window`` are ordered, and finding them needs no first-exposure
    aggregation over the whole log: the pairs seen in the window (one grouped minimum over the
    window's rows) lose those also seen before ``window.since``, found by probing the earlier rows
    against the window's units (a semi-join with the small side built once, then an anti-join). On
    time-ordered Parquet rows after ``window.before`` are skipped by row group. The running counts
    start from the window's ``units_before`` and ``treatment_before``.

    Returns:
        Columns ``stopped_index`` (0-based position) and ``stopped_at`` (that unit's first exposure).
    """
    a_up, b_up, a_dn, b_dn = coefficients
    rows = exposures(source, variant_col, until)
    inside = rows.filter(rows.ts >= instant(rows.ts, window.since), rows.ts < instant(rows.ts, window.before))
    seen_in_window = inside.group_by(["variant", "unit"]).aggregate(first_ts=inside.ts.min())
    earlier = rows.filter(rows.ts < instant(rows.ts, window.since))
    earlier = earlier.filter(earlier.unit.isin(seen_in_window.unit))
    seen_before = earlier.select("variant", "unit").distinct()
    firsts = seen_in_window.anti_join(seen_before, ["variant", "unit"])
    order = [firsts.first_ts, firsts.unit, firsts.variant]
    running = ibis.window(order_by=order, preceding=None, following=0)
    is_treatment = ibis.ifelse(firsts.variant == ibis.literal(treatment), 1, 0)
    steps = firsts.mutate(
        n=ibis.row_number().over(ibis.window(order_by=order)) + (window.units_before + 1),
        k=is_treatment.sum().over(running) + window.treatment_before,
    )
    up = steps.k * a_up + (steps.n - steps.k) * b_up
    down = steps.k * a_dn + (steps.n - steps.k) * b_dn
    log_lr = ibis.greatest(up, down) + ((up - down).abs().negate().exp() + 1).ln() + math.log(0.5)
    crossings = steps.filter(log_lr >= log_threshold)
    return (
        crossings.order_by(crossings.n)
        .limit(1)
        .select(stopped_index=crossings.n - 1, stopped_at=crossings.first_ts)
    )


def instant(column: ir.TimestampValue, when: pd.Timestamp) -> ir.TimestampScalar:
    """A literal for the aware instant ``when``, typed like ``column`` (naive columns hold UTC)."""
    zone = column.type().timezone
    value = when.tz_convert(zone) if zone else when.tz_convert("UTC").tz_localize(None)
    return ibis.literal(value, type=column.type())
