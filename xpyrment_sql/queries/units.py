"""Distinct units without bins: per variant, per pair of variants (multiple exposure), per segment."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.queries.rows import exposures, union_all
from xpyrment_sql.source import Source


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
    return union_all(parts)
