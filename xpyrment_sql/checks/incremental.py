"""Incremental runs: the traffic matrix and multiple exposure from a local state file plus the new rows.

A run with a state file (see :mod:`xpyrment_sql.state`) keeps what past runs counted: the rows of the
traffic matrix's query (:func:`xpyrment_sql.queries.traffic.count_table`: active and new units per bin
and variant, and the multiple-exposure events per bin) and the watermark, the latest exposure seen. A
later run reads only the rows at or after the *window start*

    since = start of the bin holding (watermark - lateness),

and recounts the bins from ``since`` on:

* active units from the window's rows alone (those bins lie wholly inside the window);
* new units and multiple-exposure events from the first exposure of every (variant, unit) pair of the
  units seen in the window: ``min(window's, earlier)``, where *earlier* is the pair's first exposure
  before ``since``. Events before ``since`` cannot move (rows only arrive), so only those at or after
  it are counted.

Bins before ``since`` keep their stored counts. The result is exactly a full run's when no row older
than ``since`` arrives after the run that saw the watermark: ``lateness`` is that allowance, and a row
later than it is missed until a full refresh (``verify=True`` compares with a full run and says so).

Where *earlier* comes from depends on the engine:

* **embedded engine** (Parquet, CSV, DataFrames): the state file also keeps every pair's first exposure,
  sorted by unit, and is attached to the DuckDB that reads the rows, so earlier exposures are looked
  up there instead of in the log (one unit range at a time), and the pairs the window makes new are
  appended to it without crossing into Python;
* **any other backend** (a warehouse): nothing is ever written to it. One probe query joins the
  window's units to the earlier rows of the same table and returns only counts, which are kept in the
  local state file.

Either way, only bins x variants counts come back to Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.schema as sch
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.alerts import pager
from xpyrment_sql.bins import BinSpec, as_utc
from xpyrment_sql.checks.exposure import exposure_from_events
from xpyrment_sql.checks.srm import SprtCrossings
from xpyrment_sql.checks.traffic import (
    bin_start,
    check_counts,
    chunks_for,
    fetch_counts,
    matrix_rows,
    traffic_matrix,
)
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.queries.traffic import SprtSpec, SprtStart, SprtStarts, active_units, count_table
from xpyrment_sql.results import StateRun, to_jsonable
from xpyrment_sql.source import Source
from xpyrment_sql.state import StateError, StateStore
from xpyrment_sql.state.store import StateScope, quote

Tables = StateStore | StateScope
"""Where an incremental state lives: a whole state file, or one namespace of it (a fleet's plan)."""

FORMAT = "2"
"""Version of the state tables this module writes; part of the fingerprint."""

DEFAULT_LATENESS = pd.Timedelta(hours=1)
"""How late a row may arrive and still be counted by an incremental run (see the module docstring)."""

DEFAULT_RENOTIFY = pd.Timedelta(pager.DEFAULT_RENOTIFY)
"""How long an alert that stays active waits before a run with a state file sends it again."""

FIRSTS, COUNTS = "first_exposures", "counts"
"""State tables: every pair's first exposure (embedded engine only; a pair that a late row moved
earlier keeps its superseded row too, so readers take the earliest) and the counts per bin."""

WINDOW, CHANGED = "window_triples", "changed_pairs"
"""Scratch tables of a run: the window's triples, and every pair of the units the window gives a
new pair, with its first exposure and its earliest stored one (see :func:`_changed`)."""

SCRATCH = ("temp", "main")
"""Where the scratch tables live: the embedded engine's in-memory temporary catalog, so a run writes
only what it keeps to the state file (writing and compressing them there cost a fifth of a run)."""

REFERENCE = "sprt_reference"
"""``meta`` key of the SPRT's reference variant (JSON), fixed by the first run that saw a pair."""


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """Where a monitor keeps its state and how it uses it (``LiveMonitor(state=...)``).

    Attributes:
        path: The local state file (a DuckDB database the library creates; never the user's).
        lateness: How late a row may arrive and still be counted (see the module docstring).
        refresh: Rebuild the state from the whole log instead of refusing one that does not match.
        verify: Also recompute everything from the whole log and report any difference.
        renotify: How long an alert that stays active waits before it is sent again (the state
            file is the pager's memory: :mod:`xpyrment_sql.checks.paging`).
    """

    path: Path
    lateness: pd.Timedelta = DEFAULT_LATENESS
    refresh: bool = False
    verify: bool = False
    renotify: pd.Timedelta = DEFAULT_RENOTIFY

    @classmethod
    def of(
        cls,
        path: str | os.PathLike[str],
        lateness: object,
        refresh: bool,
        verify: bool,
        renotify: object = DEFAULT_RENOTIFY,
    ) -> StateSettings:
        """Validated settings: a path to a file (not a folder), a non-negative lateness and a
        positive renotify interval."""
        target = Path(path)
        if target.is_dir():
            raise ParameterError(f"state={os.fspath(path)!r} is a folder; expected the path of a state file")
        return cls(target, check_lateness(lateness), bool(refresh), bool(verify), check_renotify(renotify))


def fingerprint(
    source: Source, variant_col: str, bins: BinSpec, sprt: SprtSpec | None = None
) -> dict[str, str]:
    """What a state file must have been built from: the same rows, columns, bins, zone, format and
    sequential test (the seed's SPRT keeps its crossing per bin, which depends on its design)."""
    columns = {
        role: f"{name} {source.schema[name]}"
        for role, name in (
            ("time_col", source.time_col),
            ("unit_col", source.unit_col),
            ("variant_col", variant_col),
        )
        if name is not None
    }
    return {
        "source": source.origin,
        **columns,
        "freq": bins.freq,
        "tz": bins.tz or "UTC",
        "sequential": "anytime" if sprt is None else f"sprt {sprt_digest(sprt)}",
        "tables": FORMAT,
    }


def sprt_digest(sprt: SprtSpec) -> str:
    """A short, stable name of the SPRT's design (its candidate shares, delta and alpha)."""
    return hashlib.sha256(repr((sprt.coefficients, sprt.log_threshold)).encode()).hexdigest()[:12]


def check_renotify(renotify: object) -> pd.Timedelta:
    """``renotify`` as a positive Timedelta (``"24h"``, ``timedelta``, ``pd.Timedelta``)."""
    try:
        value = pd.Timedelta(renotify)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"renotify={renotify!r} is not a duration; expected e.g. '24h' or '6h'") from exc
    if pd.isna(value) or value <= pd.Timedelta(0):
        raise ParameterError(f"renotify={renotify!r} must be a positive duration, e.g. '24h'")
    return value


def check_lateness(lateness: object) -> pd.Timedelta:
    """``lateness`` as a non-negative Timedelta (``"2h"``, ``timedelta``, ``pd.Timedelta``)."""
    try:
        value = pd.Timedelta(lateness)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"lateness={lateness!r} is not a duration; expected e.g. '1h' or '30min'"
        ) from exc
    if pd.isna(value) or value < pd.Timedelta(0):
        raise ParameterError(f"lateness={lateness!r} must be a duration of zero or more")
    return value


def incremental_counts(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    store: Tables,
    lateness: pd.Timedelta = DEFAULT_LATENESS,
    sprt: SprtSpec | None = None,
    *,
    rows: ir.Table | None = None,
    keys: Sequence[str] = (),
) -> tuple[pd.DataFrame, StateRun]:
    """Count the rows since the window start, update the state and return every bin's counts.

    With ``sprt``, the SPRT's sequence continues from the pairs counted before the window (see
    :class:`~xpyrment_sql.queries.traffic.SprtStart`), and each recounted bin gets its crossings.
    ``rows`` are the exposures counted (default: every row of ``source`` before ``until``); ``keys``
    are further columns of them every count is grouped by (a fleet's experiment, whose SPRT is not
    kept incrementally).

    Returns:
        The columns of :func:`~xpyrment_sql.queries.traffic.count_table` (multiple-exposure events
        included) for the whole log, and what the run read.

    Raises:
        StateError: ``until`` lies before the state's watermark (the state already holds later rows).
    """
    stored = store.get("watermark")
    watermark = pd.Timestamp(stored) if stored else None
    since = None
    if watermark is not None and not store.is_new:
        if until is not None and as_utc(until) < watermark:
            raise StateError(
                f"until={until} lies before the watermark {watermark} of the state file {store.path}: it "
                "already holds later rows; evaluate without state=, or rebuild it with refresh=True"
            )
        since = bin_start(bins, bins.key_of(watermark - lateness))
    start = None if sprt is None else _sprt_start(store, bins, since, keys)
    rows = queries.exposures(source, variant_col, until) if rows is None else rows
    fetched = schema = None
    if not source.embedded:
        probe = probe_query(source, variant_col, bins, until, since, sprt, start, rows=rows, keys=keys)
        fetched, schema = source.execute(probe, "the incremental probe (state=)"), probe.schema()
        check_counts(fetched, source, variant_col, bins)
    with store.transaction():
        if fetched is None:
            fresh = _merged_counts(source, rows, bins, until, since, store, sprt, start, keys)
            latest = _write_counts(store, source.backend, fresh, fresh.schema(), since, bins)
            for scratch in (WINDOW, CHANGED):
                source.backend.drop_table(scratch, database=SCRATCH, force=True)
        else:
            backend = ibis.duckdb.from_connection(store.con)
            latest = _write_counts(store, backend, fetched, schema, since, bins)
        newest = _newest(watermark, latest)
        if newest is not None:
            store.set("watermark", newest.isoformat())
        if sprt is not None:
            _keep_references(store, keys)
    counts = store.con.execute(f"SELECT * FROM {store.table(COUNTS)}").df()
    check_counts(counts, source, variant_col, bins)
    return counts, StateRun(str(store.path), since is None, since, newest)


def probe_query(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    since: pd.Timestamp | None,
    sprt: SprtSpec | None = None,
    sprt_start: SprtStarts | None = None,
    *,
    rows: ir.Table | None = None,
    keys: Sequence[str] = (),
) -> ir.Table:
    """One read-only query returning counts only: the window's bins, new units and events.

    Earlier first exposures of the window's units come from the same table's rows before ``since``
    (a semi-join on the window's units), so the backend needs no table of ours. Without ``since``
    (a first run) it is the full traffic matrix query with the watermark's ``last_ts``. ``rows`` and
    ``keys`` are those of :func:`incremental_counts`.
    """
    rows = queries.exposures(source, variant_col, until) if rows is None else rows
    pair = [*keys, "variant", "unit"]
    if since is None:
        firsts = rows.group_by(pair).aggregate(first_ts=rows.ts.min())
        active = active_units(rows, bins, until, latest=True, keys=keys)
    else:
        start = queries.instant(rows.ts, since)
        window = rows.filter(rows.ts >= start)
        active = active_units(window, bins, until, latest=True, keys=keys)
        seen = window.group_by(pair).aggregate(first_ts=window.ts.min())
        earlier = rows.filter(rows.ts < start).semi_join(seen.select(*keys, "unit"), [*keys, "unit"])
        earlier = earlier.group_by(pair).aggregate(first_ts=earlier.ts.min())
        firsts = _earliest(seen, earlier, keys)
    return count_table(
        active, firsts, bins, until, since, sprt, exposure=True, sprt_start=sprt_start, keys=keys
    )


def _merged_counts(
    source: Source,
    rows: ir.Table,
    bins: BinSpec,
    until: pd.Timestamp | None,
    since: pd.Timestamp | None,
    store: Tables,
    sprt: SprtSpec | None = None,
    sprt_start: SprtStarts | None = None,
    keys: Sequence[str] = (),
) -> ir.Table:
    """The window's counts on the embedded engine, with the stored first exposures updated.

    A first run stores every pair's first exposure, sorted by unit, then counts the log against it.
    A later run stores the window's (bin, variant, unit) triples (one read of the window), merges
    them with the stored pairs of their units (:func:`_changed`, one unit range at a time), and
    appends, sorted by unit, every pair whose first exposure is new or moved earlier.

    Nothing is deleted: a pair moved earlier by a late row keeps its superseded row, and every
    reader of the stored pairs takes the earliest (a delete by date would scan every stored
    timestamp each run, 0.5 s at 1B rows, for the few pairs a late row moves).

    The lookup runs one unit range at a time (:func:`unit_ranges`), in one statement: because the
    stored pairs are sorted by unit, each range scans only the row groups whose units it can hold,
    and its Bloom filter and hash table are a fraction of the window's, which keeps probing them
    in cache. At 1B rows (8M window units, 200M stored pairs) the lookup and merge went from about
    6 s to 3 s.
    """
    backend = source.backend
    database = (store.alias, "main")
    firsts_name = store.name(FIRSTS)
    pair = [*keys, "variant", "unit"]
    if since is None:
        pairs = rows.group_by(pair).aggregate(first_ts=rows.ts.min())
        backend.create_table(firsts_name, pairs.order_by("unit"), database=database, overwrite=True)
        active = active_units(rows, bins, until, chunks_for(source, bins, until), latest=True, keys=keys)
        stored = _stored(backend, firsts_name, database)
        return count_table(active, stored, bins, until, sprt=sprt, exposure=True, keys=keys)
    start = queries.instant(rows.ts, since)
    window = rows.filter(rows.ts >= start)
    key = queries.bin_key(window.ts, bins, until)
    grouped = window.group_by(*keys, bin=key, variant=window.variant, unit=window.unit)
    triples = grouped.aggregate(first_ts=window.ts.min(), last_ts=window.ts.max())
    triples = _scratch(backend, WINDOW, triples)
    active = triples.group_by([*keys, "bin", "variant"]).aggregate(
        active=triples.count(), last_ts=triples.last_ts.max()
    )
    stored = _stored(backend, firsts_name, database)
    parts = [
        _changed(_within(triples, bounds), _within(stored, bounds), since, keys)
        for bounds in unit_ranges(backend.con, WINDOW)
    ]
    merged = _scratch(backend, CHANGED, ibis.union(*parts))
    moved = merged.filter(ibis.coalesce(merged.stored_ts != merged.first_ts, True))
    backend.insert(firsts_name, moved.select(*pair, "first_ts").order_by("unit"), database=database)
    return count_table(
        active, merged, bins, until, since, sprt, exposure=True, sprt_start=sprt_start, keys=keys
    )


def _changed(
    window: ir.Table, stored: ir.Table, since: pd.Timestamp, keys: Sequence[str] = ()
) -> ir.Table:
    """Every pair of the window's units that have a pair first seen at or after ``since`` (the units
    whose counts or events the window can change): its first exposure ``first_ts``, and
    ``stored_ts``, the earliest stored one (null when the pair is new).

    ``window`` holds the window's triples and ``stored`` the stored pairs. A window pair is new
    unless a stored pair exposed it before ``since``; the units of the new pairs are the few whose
    pairs are merged (every other unit's pairs were all first seen before ``since``, so its counts
    and events lie in bins the run keeps). One anti-join finds them, where grouping all the
    window's pairs with their stored ones cost twice as much at 1B rows.

    The stored pairs are taken whatever their date: those first seen since ``since`` were counted
    from rows the window reads again (rows only arrive), so the minimum with them changes nothing,
    and a date predicate beside the join's filter on the unit makes DuckDB drop its Bloom filter.
    They are read once: Ibis makes them one common table expression, which DuckDB materializes,
    only in this shape (a column added after the semi-join is compiled into both of its uses).
    """
    unit, pair = [*keys, "unit"], [*keys, "variant", "unit"]
    known = stored.select(*pair, "first_ts", stored_ts=stored.first_ts).semi_join(window.select(*unit), unit)
    earlier = known.filter(known.stored_ts < queries.instant(known.stored_ts, since)).select(*pair)
    fresh = window.select(*pair).anti_join(earlier, pair).select(*unit)
    seen = window.select(*pair, "first_ts", stored_ts=ibis.null(known.stored_ts.type()))
    both = seen.union(known).semi_join(fresh, unit)
    return both.group_by(pair).aggregate(first_ts=both.first_ts.min(), stored_ts=both.stored_ts.min())


UnitBounds = tuple[object | None, object | None]
"""A half-open range of units ``[low, high)``; ``None`` leaves that side open."""

RANGE_UNITS = 2_000_000
"""Window triples per lookup range. Measured at 1B rows (8M window units): four ranges of 2M made
the lookup 3x faster than one of 8M; eight of 1M were no faster, sixteen slower (each range is one
more scan of the window's triples and one more hash table)."""

SAMPLE, GRID = 10_000, 64
"""The range bounds are quantiles of a sample of ``SAMPLE`` window triples, on a grid of ``GRID``
(also the most ranges a lookup is split into)."""


def unit_ranges(con: Any, scratch: str) -> list[UnitBounds]:
    """Ranges of units that split the scratch table ``scratch`` into parts of about
    :data:`RANGE_UNITS` triples: ``ceil(n / RANGE_UNITS)`` ranges (at most :data:`GRID`), bounded by
    quantiles of a reservoir sample of the table's units.

    One small query on the engine: the table's row count and ``GRID - 1`` sample quantiles. The
    bounds only balance the ranges; any bounds give the same counts.
    """
    fractions = ", ".join(str(k / GRID) for k in range(1, GRID))
    table = f"{SCRATCH[0]}.{SCRATCH[1]}.{quote(scratch)}"
    ((size, grid),) = con.execute(
        f"SELECT (SELECT count(*) FROM {table}), (SELECT quantile_disc(unit, [{fractions}]) "
        f"FROM (SELECT unit FROM {table} USING SAMPLE {SAMPLE} ROWS))"
    ).fetchall()
    ranges = min(GRID, -(-size // RANGE_UNITS))
    if ranges <= 1:
        return [(None, None)]
    cuts = sorted({grid[GRID * k // ranges - 1] for k in range(1, ranges)})
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _within(table: ir.Table, bounds: UnitBounds) -> ir.Table:
    """The rows of ``table`` whose unit lies in ``bounds``."""
    low, high = bounds
    kept = []
    if low is not None:
        kept.append(table.unit >= low)
    if high is not None:
        kept.append(table.unit < high)
    return table.filter(*kept) if kept else table


def _sprt_start(
    store: Tables, bins: BinSpec, since: pd.Timestamp | None, keys: Sequence[str] = ()
) -> SprtStarts | None:
    """The SPRT's position before the window, from the stored counts of the bins before it: one
    start, or with ``keys`` (a fleet's experiment) one per experiment."""
    if since is None:
        return None
    references = _references(store, keys)
    grouping = ", ".join([*(quote(key) for key in keys), "variant"])
    per_variant = store.run(
        f"SELECT {grouping}, sum(new) FROM {store.table(COUNTS)} WHERE part = 'matrix' AND bin < ? "
        f"GROUP BY {grouping}",
        [bins.key_of(since)],
    )
    totals: dict[object, tuple[int, int]] = {}
    for *key, variant, count in per_variant:
        name = key[0] if keys else None
        pairs, others = totals.get(name, (0, 0))
        totals[name] = (pairs + int(count), others + int(count) * (variant != references.get(name)))
    starts = {name: SprtStart(*totals[name], references.get(name)) for name in totals}
    if keys:
        return starts
    return starts.get(None, SprtStart(0, 0, references.get(None)))


def _references(store: Tables, keys: Sequence[str]) -> dict[object, object]:
    """The SPRT's reference variant fixed in the state: ``{None: variant}``, or per experiment."""
    stored = store.get(REFERENCE)
    if stored is None:
        return {}
    value = json.loads(stored)
    return dict(value) if keys else {None: value}


def _keep_references(store: Tables, keys: Sequence[str]) -> None:
    """Fix the reference variant of every sequence that has none yet: the smallest variant counted
    (a full run's choice; the mixture LR is symmetric, so any fixed one gives the same crossing)."""
    known = _references(store, keys)
    grouping = ", ".join(quote(key) for key in keys)
    table = store.table(COUNTS)
    if not keys:
        ((first,),) = store.run(f"SELECT min(variant) FROM {table} WHERE part = 'matrix'")
        if None not in known and first is not None:
            store.set(REFERENCE, json.dumps(to_jsonable(first)))
        return
    rows = store.run(
        f"SELECT {grouping}, min(variant) FROM {table} WHERE part = 'matrix' GROUP BY {grouping}"
    )
    merged = {**{key: variant for key, variant in rows if variant is not None}, **known}
    if merged != known:
        store.set(REFERENCE, json.dumps(to_jsonable([[key, variant] for key, variant in merged.items()])))


def _earliest(seen: ir.Table, earlier: ir.Table, keys: Sequence[str] = ()) -> ir.Table:
    """Per (keys, variant, unit) in either table, the earliest ``first_ts`` of its rows in both."""
    columns = [*keys, "variant", "unit", "first_ts"]
    both = seen.select(*columns).union(earlier.select(*columns))
    return both.group_by(columns[:-1]).aggregate(first_ts=both.first_ts.min())


def _write_counts(
    store: Tables,
    backend: Any,
    fresh: ir.Table | pd.DataFrame,
    schema: sch.Schema,
    since: pd.Timestamp | None,
    bins: BinSpec,
) -> object:
    """Replace the stored counts from the window start on with ``fresh``; return the latest exposure.

    ``fresh`` is a query on the engine the state file is attached to (written without leaving it) or
    the counts a warehouse returned; ``backend`` is an Ibis backend on the state file's connection.
    """
    database = (store.alias, "main")
    if since is None:
        backend.create_table(store.name(COUNTS), schema=schema, database=database, overwrite=True)
    else:
        store.run(f"DELETE FROM {store.table(COUNTS)} WHERE bin >= ?", [bins.key_of(since)])
    backend.insert(store.name(COUNTS), fresh, database=database)
    ((latest,),) = store.run(f"SELECT max(last_ts) FROM {store.table(COUNTS)}")
    return latest


def _scratch(backend: Any, name: str, expr: ir.Table) -> ir.Table:
    """``expr`` materialized as a temporary table of the embedded engine (see :data:`SCRATCH`)."""
    backend.create_table(name, expr, temp=True, overwrite=True)
    return _stored(backend, name, SCRATCH)


def _stored(backend: Any, name: str, database: tuple[str, str]) -> ir.Table:
    """A state table as an Ibis table on the engine the state file is attached to."""
    table: ir.Table = backend.table(name, database=database)
    return table


def _newest(watermark: pd.Timestamp | None, latest: object) -> pd.Timestamp | None:
    """The later of the stored watermark and the latest exposure counted, as an aware UTC instant."""
    candidates = [
        t for t in (watermark, None if latest is None else as_utc(pd.Timestamp(latest))) if t is not None
    ]
    return max(candidates) if candidates else None


def check_state_run(exact: bool) -> None:
    """Refuse a state file where an incremental run cannot be exact, saying what to do instead."""
    if not exact:
        raise ParameterError("state= counts active units exactly; use it with exact=True")


def open_state(
    source: Source, variant_col: str, bins: BinSpec, state: StateSettings, sprt: SprtSpec | None = None
) -> StateStore:
    """Lock and open the state file of a single experiment's run (attached to the embedded engine
    when the source is on it), checked against what the run is built from."""
    if sprt is not None:
        source.require_window_functions("the SPRT's first crossing with a state file")
    prints = fingerprint(source, variant_col, bins, sprt)
    con = source.backend.con if source.embedded else None
    return StateStore.open(state.path, prints, con=con, refresh=state.refresh)


def checked_incrementally(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    state: StateSettings,
    store: StateStore,
    sprt: SprtSpec | None = None,
    sprt_shares: Sequence[float] = (),
) -> tuple[pd.DataFrame, StateRun]:
    """Every bin's counts from the state file plus the new rows (the state updated), as a full run's
    :func:`~xpyrment_sql.checks.traffic.fetch_counts` with ``exposure=True`` returns them.

    ``store`` is the state file opened by :func:`open_state`. With ``state.verify``, the counts are
    recomputed from the whole log (one more query) and any difference in the traffic matrix,
    multiple exposure or the SPRT's crossing is listed in the returned record.
    """
    counts, run = incremental_counts(source, variant_col, bins, until, store, state.lateness, sprt)
    if state.verify:
        full = fetch_counts(source, variant_col, bins, until, sprt=sprt, exposure=True)
        differences = differ(counts, full, bins, variant_col, until, sprt_shares if sprt else ())
        run = dataclasses.replace(run, verified=not differences, differences=differences)
    return counts, run


def differ(
    counts: pd.DataFrame,
    full_counts: pd.DataFrame,
    bins: BinSpec,
    variant_col: str,
    until: pd.Timestamp | None,
    sprt_shares: Sequence[float] = (),
) -> tuple[str, ...]:
    """What an incremental run counted differently from a full one, in words (empty when nothing)."""
    kept = traffic_matrix(matrix_rows(counts), bins, variant_col, until)
    full = traffic_matrix(matrix_rows(full_counts), bins, variant_col, until)
    found = []
    if kept.variants != full.variants or not kept.bins.equals(full.bins):
        found.append(
            f"bins or variants differ: {len(kept.bins)} bins of {kept.variants} kept, "
            f"{len(full.bins)} of {full.variants} in the log"
        )
    else:
        for name in ("active", "new"):
            mine, theirs = getattr(kept, name), getattr(full, name)
            wrong = np.argwhere(mine != theirs)
            if wrong.size:
                row, column = wrong[0]
                found.append(
                    f"{name} units differ in {len(wrong)} cell(s), first at bin {full.bins[row]} variant "
                    f"{full.variants[column]!r}: {mine[row, column]} kept, {theirs[row, column]} in the log"
                )
    exposure, full_exposure = exposure_from_events(counts, 0.5), exposure_from_events(full_counts, 0.5)
    kept_units, log_units = exposure.multiple_units, full_exposure.multiple_units
    if kept_units != log_units:
        found.append(f"units under several variants: {kept_units} kept, {log_units} in the log")
    if exposure.units != full_exposure.units:
        found.append(f"distinct units: {exposure.units} kept, {full_exposure.units} in the log")
    elif kept_units == log_units and not exposure.pairs.equals(full_exposure.pairs):
        found.append("units shared per pair of variants differ from the log's")
    if sprt_shares:
        stops = SprtCrossings.from_counts(matrix_rows(counts), sprt_shares).stops
        full_stops = SprtCrossings.from_counts(matrix_rows(full_counts), sprt_shares).stops
        if stops != full_stops:
            found.append(f"the SPRT's first crossings (index, time): {stops} kept, {full_stops} in the log")
    return tuple(found)
