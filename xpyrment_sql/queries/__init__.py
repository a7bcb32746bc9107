"""Ibis expressions, and nothing else: every reduction that touches rows is built here.

Each builder returns an unexecuted expression whose result is small (bins x variants rows, or one row).
Executing happens in :meth:`xpyrment_sql.source.Source.execute`; statistics happen in ``stats/``.

* :mod:`~xpyrment_sql.queries.rows`: the ``(ts, variant, unit)`` rows, bin keys, time literals;
* :mod:`~xpyrment_sql.queries.traffic`: the traffic matrix query (and the SPRT's crossing);
* :mod:`~xpyrment_sql.queries.events`: multiple exposure as events per bin, inside that query;
* :mod:`~xpyrment_sql.queries.units`: distinct units per variant, per pair, per segment;
* :mod:`~xpyrment_sql.queries.moments`: per-variant metric moments;
* :mod:`~xpyrment_sql.queries.sql`: any of them compiled to a SQL dialect;
* :mod:`~xpyrment_sql.queries.log`: the SQL a run sent, recorded from Ibis' log.
"""

from xpyrment_sql.queries.rows import before, bin_key, exposures, instant
from xpyrment_sql.queries.traffic import SprtSpec, SprtStart, traffic_counts
from xpyrment_sql.queries.units import (
    multiple_exposure_counts,
    segment_units,
    units_per_variant,
)

__all__ = [
    "SprtSpec",
    "SprtStart",
    "before",
    "bin_key",
    "exposures",
    "instant",
    "multiple_exposure_counts",
    "segment_units",
    "traffic_counts",
    "units_per_variant",
]
