"""Every experiment of an exposure table counted in one query, grouped by the experiment column.

The traffic matrix's query (:func:`~xpyrment_sql.queries.traffic.count_table`) with the experiment
as one more grouping key: active units per (experiment, bin, variant), first exposures per
(experiment, variant, unit), the multiple-exposure events and, for the seed's SPRT, one ordered
window per experiment. The guardrails' metric moments are one more query grouped the same way
(:func:`fleet_moments`). Each configured experiment keeps only its rows from ``start`` to ``end``;
experiments not in the config keep all of theirs when ``others`` is set. Nothing but counts or
moments per experiment, bin and variant comes back."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec, Chunk
from xpyrment_sql.queries.moments import MomentSpec, variant_moments
from xpyrment_sql.queries.rows import exposures, instant
from xpyrment_sql.queries.traffic import SprtSpec, active_units, count_table
from xpyrment_sql.source import Source

EXPERIMENT = "experiment"
"""The experiment's column in the fleet's counts."""

Window = tuple[pd.Timestamp | None, pd.Timestamp | None]
"""An experiment's ``(start, end)``: its rows are those with ``start <= ts < end`` (``None``: open)."""


def fleet_counts(
    source: Source,
    variant_col: str,
    experiment_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    windows: Mapping[object, Window],
    *,
    others: Sequence[object] | None = None,
    chunks: Sequence[Chunk] = ((None, None),),
    sprt: SprtSpec | None = None,
    max_rows: int | None = None,
) -> ir.Table:
    """The counts of :func:`~xpyrment_sql.queries.traffic.count_table` per experiment, in one query.

    Args:
        windows: The experiments counted, by their value in ``experiment_col`` (typed like it), with
            the time window of each.
        others: Also count every experiment not among these ids (the whole config's), with all its
            rows: those seen in the data but not configured. ``None`` counts only ``windows``.
        chunks: Time chunks active units are deduplicated in (see ``bins.time_chunks``).
        sprt: The seed's SPRT crossings, one sequence per experiment.
        max_rows: Return at most ``max_rows + 1`` rows.

    Returns:
        :data:`EXPERIMENT` and the columns of ``count_table`` with ``last_ts`` (the latest exposure of
        each matrix cell) and the multiple-exposure events.
    """
    rows = fleet_rows(source, variant_col, experiment_col, until, windows, others)
    keys = (EXPERIMENT,)
    active = active_units(rows, bins, until, chunks, latest=True, keys=keys)
    firsts = rows.group_by([EXPERIMENT, "variant", "unit"]).aggregate(first_ts=rows.ts.min())
    counts = count_table(active, firsts, bins, until, sprt=sprt, exposure=True, keys=keys)
    return counts.limit(max_rows + 1) if max_rows is not None else counts


def fleet_rows(
    source: Source,
    variant_col: str,
    experiment_col: str,
    until: pd.Timestamp | None,
    windows: Mapping[object, Window],
    others: Sequence[object] | None = None,
) -> ir.Table:
    """The exposures the fleet counts: ``ts``, ``variant``, ``unit`` and :data:`EXPERIMENT`, each
    experiment's rows within its window (``others``: see :func:`fleet_counts`)."""
    rows = exposures(source, variant_col, until, extra={EXPERIMENT: experiment_col})
    rows = rows.filter(rows[EXPERIMENT].notnull())
    keep = kept(rows[EXPERIMENT], rows.ts, windows, others)
    return rows if keep is None else rows.filter(keep)


def fleet_moments(
    source: Source,
    variant_col: str,
    experiment_col: str,
    specs: Sequence[MomentSpec],
    until: pd.Timestamp | None,
    windows: Mapping[object, Window],
    *,
    others: Sequence[object] | None = None,
) -> ir.Table:
    """The guardrails' per-variant moments (:func:`~xpyrment_sql.queries.moments.variant_moments`,
    summed per unit) of every experiment in one query: one row per (experiment, variant).

    ``specs`` are every experiment's guarded metrics together; each experiment reads its own from
    the row (the others come back too, computed over its units, unused). Rows are kept as in
    :func:`fleet_counts`: each experiment's within its window, ``others`` with all of theirs.
    """
    table = source.table
    column = table[experiment_col]
    keep = kept(column, source.timestamp(), windows, others)
    keep = column.notnull() if keep is None else column.notnull() & keep
    return variant_moments(
        source, variant_col, specs, source.unit_col, until=until, keys={EXPERIMENT: experiment_col}, keep=keep
    )


def kept(
    column: ir.Column,
    ts: ir.TimestampValue,
    windows: Mapping[object, Window],
    others: Sequence[object] | None,
) -> ir.BooleanValue | None:
    """Which rows belong to a counted experiment (``None``: all of them), from the experiment
    ``column`` and the row's time ``ts``.

    Experiments without a time window are one ``IN`` list (with ``others``: one ``NOT IN`` list of
    the config's other experiments), so a row meets one hash lookup plus a test per experiment that
    has a window, not a comparison per experiment of the config (50 of them cost as much as the
    counting at 100M rows).
    """
    windowed = {experiment: window for experiment, window in windows.items() if window != (None, None)}
    whole = [experiment for experiment in windows if experiment not in windowed]
    branches = [_inside(column, ts, experiment, window) for experiment, window in windowed.items()]
    if others is not None:
        elsewhere = [experiment for experiment in others if experiment not in whole]
        if not elsewhere:
            return None
        branches.append(column.notin([_literal(column, experiment) for experiment in elsewhere]))
    elif whole:
        branches.append(column.isin([_literal(column, experiment) for experiment in whole]))
    return functools.reduce(operator.or_, branches) if branches else ibis.literal(False)


def _literal(column: ir.Column, experiment: object) -> ir.Scalar:
    return ibis.literal(experiment, type=column.type())


def _inside(column: ir.Column, ts: ir.TimestampValue, experiment: object, window: Window) -> ir.BooleanValue:
    """``experiment_col = experiment`` and the row inside the experiment's time window."""
    start, end = window
    condition = column == _literal(column, experiment)
    if start is not None:
        condition &= ts >= instant(ts, start)
    if end is not None:
        condition &= ts < instant(ts, end)
    return condition
