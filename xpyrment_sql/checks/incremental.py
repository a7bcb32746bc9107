"""Incremental runs: the traffic matrix from a local state file plus the rows that are new since.

A run with a state file (see :mod:`xpyrment_sql.state`) keeps what past runs learned: the counts of
every bin, the first exposure of every (variant, unit) pair and the watermark, the latest exposure
seen. A later run reads only the rows at or after the *window start*

    since = start of the bin holding (watermark - lateness),

and, for the bins from ``since`` on:

* active units are counted from the window's rows alone (those bins lie wholly inside the window);
* each pair's first exposure becomes ``min(stored, window's)``; new units per bin are the pairs whose
  first exposure falls in it (a pair first seen before ``since`` cannot move: rows only arrive).

Bins before ``since`` keep their stored counts. The result is exactly a full run's when no row older
than ``since`` arrives after the run that saw the watermark: ``lateness`` is that allowance, and a row
later than it is missed until a full refresh (``verify=True`` compares with a full run and says so).

Everything runs inside the embedded DuckDB, where the state file is attached next to the rows: the
window's pairs go from the log into the state file without crossing into Python, and only the
bins x variants counts come back. The multiple-exposure counts come from the stored pairs, so the
log's pairs are not read a second time.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.bins import BinSpec, as_utc
from xpyrment_sql.checks.exposure import multiple_exposure
from xpyrment_sql.checks.traffic import bin_start, fetch_matrix, traffic_matrix
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.queries.traffic import active_units
from xpyrment_sql.results import MultipleExposureResult, StateRun, TrafficMatrix
from xpyrment_sql.source import Source
from xpyrment_sql.state import StateError, StateStore

FORMAT = "1"
"""Version of the state tables this module writes; part of the fingerprint."""

DEFAULT_LATENESS = pd.Timedelta(hours=1)
"""How late a row may arrive and still be counted by an incremental run (see the module docstring)."""

FIRSTS, BINS, WINDOW, SHARED = "first_exposures", "bin_counts", "window_pairs", "shared_pairs"


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """Where a monitor keeps its state and how it uses it (``LiveMonitor(state=...)``).

    Attributes:
        path: The local state file (a DuckDB database the library creates; never the user's).
        lateness: How late a row may arrive and still be counted (see the module docstring).
        refresh: Rebuild the state from the whole log instead of refusing one that does not match.
        verify: Also recompute everything from the whole log and report any difference.
    """

    path: Path
    lateness: pd.Timedelta = DEFAULT_LATENESS
    refresh: bool = False
    verify: bool = False

    @classmethod
    def of(cls, path: str | os.PathLike[str], lateness: object, refresh: bool, verify: bool) -> StateSettings:
        """Validated settings: a path to a file (not a folder) and a non-negative lateness."""
        target = Path(path)
        if target.is_dir():
            raise ParameterError(f"state={os.fspath(path)!r} is a folder; expected the path of a state file")
        return cls(target, check_lateness(lateness), bool(refresh), bool(verify))


def fingerprint(source: Source, variant_col: str, bins: BinSpec) -> dict[str, str]:
    """What a state file must have been built from: the same rows, columns, bins, zone and format."""
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
        "tables": FORMAT,
    }


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


def incremental_matrix(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    store: StateStore,
    lateness: pd.Timedelta = DEFAULT_LATENESS,
) -> tuple[TrafficMatrix, ir.Table, StateRun]:
    """Update the state with the rows since the window start and return the whole traffic matrix.

    Returns:
        The matrix, the multiple-exposure query over the stored pairs (to run on the same engine),
        and what the run read.

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
    rows = queries.exposures(source, variant_col, until)
    window = rows if since is None else rows.filter(rows.ts >= queries.instant(rows.ts, since))
    pairs = window.group_by(["variant", "unit"]).aggregate(first_ts=window.ts.min(), last_ts=window.ts.max())
    backend = source.backend
    database = (store.alias, "main")
    with store.transaction():
        backend.create_table(WINDOW, pairs, database=database, overwrite=True)
        if since is None:
            backend.create_table(
                FIRSTS, _stored(backend, WINDOW, database).drop("last_ts"), database=database, overwrite=True
            )
            _build_shared_pairs(store)
        else:
            _merge_first_exposures(store)
        firsts = _stored(backend, FIRSTS, database)
        active = active_units(window, bins, until)
        recent = (
            firsts
            if since is None
            else firsts.filter(firsts.first_ts >= queries.instant(firsts.first_ts, since))
        )
        recent = recent.select(bin=queries.bin_key(recent.first_ts, bins, until), variant=recent.variant)
        new = recent.group_by(["bin", "variant"]).aggregate(new=recent.count())
        joined = active.left_join(new, ["bin", "variant"])
        counts = joined.select("bin", "variant", "active", new=ibis.coalesce(joined.new, 0))
        if since is None:
            backend.create_table(BINS, counts, database=database, overwrite=True)
        else:
            store.run(f"DELETE FROM {store.table(BINS)} WHERE bin >= ?", [bins.key_of(since)])
            backend.insert(BINS, counts, database=database)
        ((latest,),) = store.run(f"SELECT max(last_ts) FROM {store.table(WINDOW)}")
        newest = _newest(watermark, latest)
        if newest is not None:
            store.set("watermark", newest.isoformat())
        store.run(f"DROP TABLE {store.table(WINDOW)}")
    matrix = traffic_matrix(source.execute(_stored(backend, BINS, database)), bins, variant_col, until)
    units = int(store.get("units") or 0)
    shared = queries.shared_units(_stored(backend, SHARED, database))
    exposure = shared.mutate(units=ibis.literal(units, "int64"))
    return matrix, exposure, StateRun(str(store.path), since is None, since, newest)


def _stored(backend: Any, name: str, database: tuple[str, str]) -> ir.Table:
    """A state table as an Ibis table on the engine the state file is attached to."""
    table: ir.Table = backend.table(name, database=database)
    return table


def _build_shared_pairs(store: StateStore) -> None:
    """From all first exposures: the distinct units, and the pairs of units seen under several variants."""
    firsts, shared = store.table(FIRSTS), store.table(SHARED)
    store.run(
        f"CREATE OR REPLACE TABLE {shared} AS SELECT variant, unit FROM {firsts} "
        f"WHERE unit IN (SELECT unit FROM {firsts} GROUP BY unit HAVING count(*) > 1)"
    )
    ((units,),) = store.run(f"SELECT count(DISTINCT unit) FROM {firsts}")
    store.set("units", str(units))


def _merge_first_exposures(store: StateStore) -> None:
    """Fold the window's pairs into the stored ones, touching only the units the window holds.

    ``touched`` (the stored pairs of units seen in the window, one scan of the stored pairs) is all
    the rest needs: a pair's first exposure becomes ``min(stored, window's)``; pairs never seen are
    inserted; units never seen add to the ``units`` count; and the window's units are re-sorted into
    the shared pairs (units under two or more variants), so multiple exposure is counted from a
    small table instead of every pair.
    """
    firsts, window, shared = store.table(FIRSTS), store.table(WINDOW), store.table(SHARED)
    touched, fresh = store.table("touched_pairs"), store.table("fresh_pairs")
    execute = store.run
    execute(
        f"CREATE OR REPLACE TABLE {touched} AS SELECT f.variant, f.unit, f.first_ts FROM {firsts} AS f "
        f"SEMI JOIN (SELECT DISTINCT unit FROM {window}) AS w ON f.unit = w.unit"
    )
    execute(
        f"CREATE OR REPLACE TABLE {fresh} AS SELECT w.variant, w.unit, w.first_ts FROM {window} AS w "
        f"ANTI JOIN {touched} AS t ON t.variant = w.variant AND t.unit = w.unit"
    )
    earlier = (
        f"SELECT w.variant, w.unit, w.first_ts FROM {window} AS w JOIN {touched} AS t "
        "ON t.variant = w.variant AND t.unit = w.unit WHERE w.first_ts < t.first_ts"
    )
    execute(
        f"UPDATE {firsts} AS f SET first_ts = e.first_ts FROM ({earlier}) AS e "
        "WHERE f.variant = e.variant AND f.unit = e.unit"
    )
    execute(f"INSERT INTO {firsts} SELECT variant, unit, first_ts FROM {fresh}")
    ((added,),) = execute(
        f"SELECT count(DISTINCT n.unit) FROM {fresh} AS n ANTI JOIN {touched} AS t ON t.unit = n.unit"
    )
    store.set("units", str(int(store.get("units") or 0) + added))
    both = f"(SELECT variant, unit FROM {touched} UNION ALL SELECT variant, unit FROM {fresh})"
    execute(f"DELETE FROM {shared} WHERE unit IN (SELECT unit FROM {both})")
    execute(
        f"INSERT INTO {shared} SELECT variant, unit FROM {both} "
        f"WHERE unit IN (SELECT unit FROM {both} GROUP BY unit HAVING count(*) > 1)"
    )
    execute(f"DROP TABLE {touched}")
    execute(f"DROP TABLE {fresh}")


def _newest(watermark: pd.Timestamp | None, latest: object) -> pd.Timestamp | None:
    """The later of the stored watermark and the window's latest exposure, as an aware UTC instant."""
    candidates = [
        t for t in (watermark, None if latest is None else as_utc(pd.Timestamp(latest))) if t is not None
    ]
    return max(candidates) if candidates else None


def check_state_run(source: Source, exact: bool, sprt: bool) -> None:
    """Refuse a state file where an incremental run cannot (yet) be exact, saying what to do instead."""
    if not source.embedded:
        raise ParameterError(
            f"state= needs a log read by the embedded engine (Parquet or CSV files, a DataFrame); "
            f"{source.origin} runs on {source.backend_name}: run it without state="
        )
    if not exact:
        raise ParameterError("state= counts active units exactly; use it with exact=True")
    if sprt:
        raise ParameterError("state= runs the anytime-valid sequential test; use sequential_method='anytime'")


def checked_incrementally(
    source: Source,
    variant_col: str,
    bins: BinSpec,
    until: pd.Timestamp | None,
    state: StateSettings,
    max_share: float | None,
) -> tuple[TrafficMatrix, MultipleExposureResult | None, StateRun]:
    """The traffic matrix and multiple exposure from the state file plus the new rows, state updated.

    With ``state.verify``, the same two are recomputed from the whole log (two more queries) and any
    difference is listed in the returned record.
    """
    prints = fingerprint(source, variant_col, bins)
    with StateStore.open(state.path, prints, con=source.backend.con, refresh=state.refresh) as store:
        matrix, shared, run = incremental_matrix(source, variant_col, bins, until, store, state.lateness)
        exposure = None
        if max_share is not None:
            exposure = multiple_exposure(source, variant_col, until, max_share, shared)
    if state.verify:
        full = fetch_matrix(source, variant_col, bins, until)[0]
        again = None if max_share is None else multiple_exposure(source, variant_col, until, max_share)
        differences = differ(matrix, full, exposure, again)
        run = dataclasses.replace(run, verified=not differences, differences=differences)
    return matrix, exposure, run


def differ(
    kept: TrafficMatrix,
    full: TrafficMatrix,
    exposure: MultipleExposureResult | None,
    full_exposure: MultipleExposureResult | None,
) -> tuple[str, ...]:
    """What an incremental run got differently from a full one, in words (empty when nothing)."""
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
    if exposure is not None and full_exposure is not None:
        kept_units, log_units = exposure.multiple_units, full_exposure.multiple_units
        if kept_units != log_units:
            found.append(f"units under several variants: {kept_units} kept, {log_units} in the log")
    return tuple(found)
