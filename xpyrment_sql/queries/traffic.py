"""The traffic matrix query: distinct units per (bin, variant), active and first exposed, in one query;
optionally with the seed's SPRT first crossing, found by one ordered window over the first exposures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec, Chunk
from xpyrment_sql.queries.events import exposure_events
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
    exposure: bool = False,
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
    second scan of the log. With ``exposure``, the same first exposures also give the multiple-exposure
    events per bin (:mod:`xpyrment_sql.queries.events`), so that check reads no pair a second time.

    With ``max_rows``, at most ``max_rows + 1`` rows come back: enough for the caller to refuse a
    matrix that is too large (a wrong column) without fetching all of it.

    Returns:
        The columns of :func:`count_table`.
    """
    rows = exposures(source, variant_col, until)
    if exact:
        active = active_units(rows, bins, until, chunks)
    else:
        binned = rows.mutate(bin=bin_key(rows.ts, bins, until))
        active = binned.group_by(["bin", "variant"]).aggregate(active=binned.unit.approx_nunique())
    firsts = rows.group_by(["variant", "unit"]).aggregate(first_ts=rows.ts.min())
    counts = count_table(active, firsts, bins, until, sprt=sprt, exposure=exposure)
    return counts.limit(max_rows + 1) if max_rows is not None else counts


def count_table(
    active: ir.Table,
    firsts: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    since: pd.Timestamp | None = None,
    sprt: SprtSpec | None = None,
    exposure: bool = False,
    sprt_start: SprtStarts | None = None,
    keys: Sequence[str] = (),
) -> ir.Table:
    """The traffic matrix's counts, and optionally the multiple-exposure events, as one table.

    Args:
        active: Columns ``bin``, ``variant``, ``active`` (and ``last_ts``, the latest exposure in the
            cell, when the caller keeps a watermark).
        firsts: First exposure per pair: ``variant``, ``unit``, ``first_ts``.
        since: Count ``new`` units and events only at or after this instant (an incremental run's
            window start; ``firsts`` then holds every pair of the units seen since).
        sprt: Add the SPRT's first crossings.
        exposure: Add the multiple-exposure events.
        sprt_start: Where the SPRT's sequence stands at ``since`` (an incremental run); with
            ``keys``, one start per experiment.
        keys: Further columns of ``active`` and ``firsts`` every count is grouped by (the experiment).

    Returns:
        Rows marked by ``part``: ``"matrix"`` rows (one per non-empty bin and variant) fill ``active``
        and ``new``; ``"units"``, ``"multiple"`` and ``"pair"`` rows fill ``units`` (see
        :func:`~xpyrment_sql.queries.events.exposure_events`). Columns ``part``, ``bin``, ``variant``,
        ``second_variant``, ``active``, ``new``, ``units``, then ``last_ts`` and the SPRT's columns
        when asked for; null where a part has no value. ``keys`` come first.
    """
    dated = firsts
    if since is not None:
        dated = firsts.filter(firsts.first_ts >= instant(firsts.first_ts, since))
    if sprt is None:
        dated = dated.select(*keys, bin=bin_key(dated.first_ts, bins, until), variant=dated.variant)
        new = dated.group_by([*keys, "bin", "variant"]).aggregate(new=dated.count())
    else:
        new = _first_exposures_with_crossings(dated, bins, until, sprt, sprt_start, keys)
    joined = active.left_join(new, [*keys, "bin", "variant"])
    extras = {
        name: joined[name]
        for name in (*active.columns, *new.columns)
        if name not in _COUNTS and name not in keys
    }
    matrix = joined.select(
        *(joined[key] for key in keys),
        part=ibis.literal("matrix"),
        bin=joined.bin,
        variant=joined.variant,
        second_variant=ibis.null(firsts.variant.type()),
        active=joined.active,
        new=ibis.coalesce(joined.new, 0),
        units=ibis.null("int64"),
        **extras,
    )
    if not exposure:
        return matrix
    blanks = {name: ibis.null(value.type()) for name, value in extras.items()}
    events = [
        part.mutate(active=ibis.null("int64"), new=ibis.null("int64"), **blanks).select(matrix.columns)
        for part in exposure_events(firsts, bins, until, since, keys)
    ]
    return union_all([matrix, *events])


_COUNTS = ("bin", "variant", "active", "new")
"""The matrix columns every part of :func:`count_table` has; the rest are carried as extras."""


def active_units(
    rows: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    chunks: Sequence[Chunk] = ((None, None),),
    latest: bool = False,
    keys: Sequence[str] = (),
) -> ir.Table:
    """Exact distinct units per (bin, variant), deduplicating one time chunk at a time.

    With ``latest``, also ``last_ts``: the latest exposure per (bin, variant), from which a run with
    a state file takes its watermark without another pass over the rows. ``keys`` are further
    columns of ``rows`` to group by (the experiment).
    """
    per_chunk = []
    for since, before in chunks:
        bounds = [rows.ts >= instant(rows.ts, since)] if since is not None else []
        bounds += [rows.ts < instant(rows.ts, before)] if before is not None else []
        part = rows.filter(*bounds) if bounds else rows
        key = bin_key(part.ts, bins, until)
        grouped = part.group_by(*(part[k] for k in keys), bin=key, variant=part.variant, unit=part.unit)
        if latest:
            triples = grouped.aggregate(last_ts=part.ts.max())
            counts = triples.group_by([*keys, "bin", "variant"]).aggregate(
                active=triples.count(), last_ts=triples.last_ts.max()
            )
        else:
            triples = grouped.aggregate()
            counts = triples.group_by([*keys, "bin", "variant"]).aggregate(active=triples.count())
        per_chunk.append(counts)
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


@dataclasses.dataclass(frozen=True)
class SprtStart:
    """Where the SPRT's sequence stands before an incremental run's window.

    The pairs first exposed before the window start precede every later one in the sequence, so the
    window's pairs continue it: position ``n`` and running count ``k`` start from these offsets.

    Attributes:
        pairs: Pairs first exposed before the window (the sequence's length so far).
        others: Those of them whose variant is not ``reference``.
        reference: The variant whose ``y`` is 0, fixed when the state was first built (None before
            any pair: the window's ``MIN(variant)``). The mixture LR is symmetric in the two arms
            (swap them and ``p0 -> 1 - p0``), so any fixed choice gives the full run's crossing.
    """

    pairs: int
    others: int
    reference: object


SprtStarts = SprtStart | Mapping[object, SprtStart]
"""Where the SPRT's sequence stands before an incremental window: one start, or one per experiment."""


def _keyed_starts(
    key: ir.Column,
    variant: ir.Column,
    window_reference: ir.Value,
    starts: Mapping[object, SprtStart],
) -> tuple[ir.Value, ir.NumericValue | int, ir.NumericValue | float]:
    """Per experiment, the stored reference variant (else the window's smallest) and the offsets
    of its sequence, as CASE expressions on the experiment column (no table of ours is needed on
    the backend: a warehouse probe stays read-only)."""
    if not starts:
        return window_reference, 0, 0.0

    def by_key(value: Callable[[SprtStart], object], default: ir.Value | int, kind: Any) -> Any:
        branches = [
            (key == ibis.literal(experiment, type=key.type()), ibis.literal(value(start), type=kind))
            for experiment, start in starts.items()
            if value(start) is not None
        ]
        return ibis.cases(*branches, else_=default) if branches else default

    reference = by_key(lambda start: start.reference, window_reference, variant.type())
    pairs = by_key(lambda start: start.pairs, 0, "int64")
    others = by_key(lambda start: float(start.others), 0.0, "float64")
    return reference, pairs, others


def _first_exposures_with_crossings(
    firsts: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    sprt: SprtSpec,
    start: SprtStarts | None = None,
    keys: Sequence[str] = (),
) -> ir.Table:
    """New units per (bin, variant), with each bin's first SPRT crossing per candidate share.

    One ordered window over the first exposures gives ``n`` (position, 1-based) and ``k`` (running
    count of ``y``). With a candidate's ``(a_up, b_up, a_dn, b_dn)``,
    ``log L(up) = k*a_up + (n-k)*b_up``, ``log L(down) = k*a_dn + (n-k)*b_dn`` and
    ``log LR = log(0.5) + m + log(1 + exp(-|up - down|))`` with ``m = max(up, down)``, the overflow-free
    form of ``0.5*exp(up) + 0.5*exp(down)``. Counts are DOUBLE, so no engine does the arithmetic in
    DECIMAL (DuckDB multiplies a HUGEINT running sum by a decimal literal 50 times slower).

    With ``keys``, each experiment is its own sequence: the window is partitioned by them, and the
    reference variant is each partition's smallest (a window minimum instead of a scalar subquery).

    Returns:
        Columns ``bin``, ``variant``, ``new``, ``other`` (1.0 when the variant is not the reference)
        and, for candidate ``i``, ``stop_n{i}`` (smallest ``n`` in the bin whose ``log LR`` crosses) and
        ``stop_ts{i}`` (that pair's first exposure): null where the bin holds no crossing.
    """
    pairs: ir.NumericValue | int
    others: ir.NumericValue | float
    if keys:
        reference = firsts.variant.min().over(ibis.window(group_by=[firsts[k] for k in keys]))
        starts = start if isinstance(start, Mapping) else {}
        reference, pairs, others = _keyed_starts(firsts[keys[0]], firsts.variant, reference, starts)
    else:
        single = start if isinstance(start, SprtStart) else SprtStart(0, 0, None)
        pairs, others = single.pairs, float(single.others)
        if single.reference is None:
            reference = firsts.variant.min().as_scalar()
        else:
            reference = ibis.literal(single.reference, type=firsts.variant.type())
    flagged = firsts.mutate(y=ibis.ifelse(firsts.variant != reference, 1, 0).cast("float64"))
    order = ibis.window(
        group_by=[flagged[k] for k in keys],
        order_by=[flagged.first_ts, flagged.unit, flagged.variant],
        preceding=None,
        following=0,
    )
    steps = flagged.mutate(
        bin=bin_key(flagged.first_ts, bins, until),
        n=(ibis.row_number().over(order) + 1 + pairs).cast("float64"),
        k=flagged.y.sum().over(order) + others,
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
    return steps.group_by([*keys, "bin", "variant"]).aggregate(
        new=steps.count(), other=steps.y.max(), **crossings
    )
