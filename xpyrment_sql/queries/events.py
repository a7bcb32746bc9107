"""Multiple exposure as events per bin, dated from the first exposures the traffic matrix already has.

From the first exposure ``f(v, u)`` of every (variant, unit) pair, three moments are dated:

* ``units``: a unit's first exposure under any variant, ``min_v f(v, u)``;
* ``pair``: the moment a unit has been seen under both variants ``a < b`` of a pair,
  ``max(f(a, u), f(b, u))``;
* ``multiple``: the moment a unit has been seen under a second variant, the second-smallest
  ``f(v, u)``, which is ``min`` over its pairs of the pair moment.

Each is counted per bin. The totals of the multiple-exposure check are sums over bins (distinct units,
units under several variants, units shared by each pair), so they come out of the traffic matrix's
own query, from the first exposures it groups anyway: the log's (variant, unit) pairs are read once.
And since an event never moves once every row before it is known, an incremental run recounts only
the bins from its window start on (``since``): pass the first exposures of every pair of the units
seen since then, and only events at or after ``since`` are counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec
from xpyrment_sql.queries.rows import bin_key, instant


def exposure_events(
    firsts: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    since: pd.Timestamp | None = None,
    keys: Sequence[str] = (),
) -> list[ir.Table]:
    """The ``units``, ``multiple`` and ``pair`` counts per bin from first exposures.

    Args:
        firsts: One row per (variant, unit) pair: columns ``variant``, ``unit``, ``first_ts``. With
            ``since``, every pair of each unit seen since then must be present.
        bins: The bins events are counted in (those of the traffic matrix).
        until: The evaluation instant (for bins in a zone with offset changes).
        since: Count only events at or after this instant (an incremental run's window start).
        keys: Further columns of ``firsts`` (the experiment): a unit is then counted, and shared
            between variants, within each key.

    Returns:
        Three tables with columns ``keys``, ``part``, ``bin``, ``variant``, ``second_variant``,
        ``units`` (the variants are null except in ``pair`` rows, where ``variant < second_variant``).
    """
    unit = [*keys, "unit"]
    per_unit = firsts.group_by(unit).aggregate(at=firsts.first_ts.min(), variants=firsts.count())
    # An inner join, not a semi join: DuckDB drops a semi join on units with several variants as
    # implied by the self-join below, and then joins every pair with every other (a third of the
    # whole query's time at 10M rows); the inner join keeps the self-join to shared units.
    several = per_unit.filter(per_unit.variants > 1).select(*unit, "variants")
    shared = firsts.join(several, unit).select(*unit, "variant", "first_ts")
    other = shared.view()
    both = shared.join(other, unit)
    both = both.filter(both.variant < both.variant_right)
    pairs = both.select(
        *unit,
        variant=both.variant,
        second_variant=both.variant_right,
        at=ibis.greatest(both.first_ts, both.first_ts_right),
    )
    multiple = pairs.group_by(unit).aggregate(at=pairs.at.min())
    variant_type = firsts.variant.type()
    return [
        _dated("units", per_unit, keys, [], bins, until, since, variant_type),
        _dated("multiple", multiple, keys, [], bins, until, since, variant_type),
        _dated("pair", pairs, keys, ["variant", "second_variant"], bins, until, since, variant_type),
    ]


def _dated(
    part: str,
    events: ir.Table,
    groups: Sequence[str],
    keys: list[str],
    bins: BinSpec,
    until: pd.Timestamp | None,
    since: pd.Timestamp | None,
    variant_type: object,
) -> ir.Table:
    """Events (one row each, dated by ``at``) counted per ``groups``, bin and ``keys``, in the common
    columns."""
    if since is not None:
        events = events.filter(events.at >= instant(events.at, since))
    dated = events.select(*groups, *keys, bin=bin_key(events.at, bins, until))
    counts = dated.group_by([*groups, "bin", *keys]).aggregate(units=dated.count())
    none = ibis.null(variant_type)
    return counts.select(
        *(counts[group] for group in groups),
        part=ibis.literal(part),
        bin=counts.bin,
        variant=counts.variant if keys else none,
        second_variant=counts.second_variant if keys else none,
        units=counts.units,
    )
