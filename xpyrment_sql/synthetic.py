"""Synthetic exposure logs for the demo command, the tests and the benchmarks.

A log is one streaming DuckDB ``SELECT`` over ``range(rows)`` copied straight to a ZSTD Parquet
file, so 1e9 rows need no more memory than 1e3. Every random draw is a hash of the row index (or
unit id) keyed by the seed: the same seed gives the same content whatever the thread count. The
timestamp is a non-decreasing function of the row index, so the file comes out in time order
without a sort and each row group covers a narrow time range (time filters can skip row groups).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate

import duckdb

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.source.files import sql_literal

_SALT_UNIT, _SALT_ARM, _SALT_VALUE, _SALT_SRM, _SALT_DROP = range(1, 6)


@dataclass(frozen=True)
class PlantedDrop:
    """From ``after`` on, rows (of ``arm`` only, if set) are kept with probability ``keep``."""

    after: datetime
    keep: float
    arm: str | None = None


@dataclass(frozen=True)
class ExposureLogSpec:
    """The parameters a log was written with, so callers know what the checks should find.

    ``units`` is the size of the unit pool; each row draws its unit uniformly from it, so the
    number of distinct units seen is about ``units * (1 - exp(-rows_per_unit))``.
    """

    path: str
    rows: int
    days: float
    arms: tuple[tuple[str, float], ...]
    units: int
    rows_per_unit: float
    start: datetime
    end: datetime
    diurnal: bool
    srm: PlantedDrop | None
    traffic_drop: PlantedDrop | None
    seed: int
    rows_written: int


def _hash(expr: str, seed: int, salt: int) -> str:
    """SQL for a 64-bit hash of ``expr`` in the independent stream (seed, salt).

    DuckDB's multi-argument ``hash(a, b)`` mixes its inputs too weakly (draws salted that way
    correlate at about 0.9), so a splitmix64 key is XORed into ``hash(expr)`` and re-hashed.
    """
    key = (seed + salt * 0x9E3779B97F4A7C15) % 2**64
    key = ((key ^ (key >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    key = ((key ^ (key >> 27)) * 0x94D049BB133111EB) % 2**64
    return f"hash(xor(hash({expr}), {key ^ (key >> 31)}::UBIGINT))"


def _uniform(expr: str, seed: int, salt: int) -> str:
    """SQL for a deterministic uniform draw in (0, 1) from the top 53 bits of a hash."""
    return f"((({_hash(expr, seed, salt)} >> 11)::DOUBLE + 0.5) / {2.0**53!r})"


def _number(name: str, value: object, low: float, high: float = math.inf, *, strict: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` if ``strict``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
        or (strict and value == low)
    ):
        bounds = f"{'(' if strict else '['}{low:g}, {high:g}{')' if high == math.inf else ']'}"
        raise ParameterError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return float(value)


def _integer(name: str, value: object, low: int) -> int:
    """``value`` as a 64-bit int ``>= low``, else a ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        raise ParameterError(f"{name} must be a 64-bit integer >= {low}, got {value!r}")
    return value


def _timestamp(name: str, value: object) -> datetime:
    """A naive UTC datetime from a datetime or an ISO string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ParameterError(f"{name} must be an ISO timestamp, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ParameterError(f"{name} must be a datetime or an ISO timestamp, got {value!r}")
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _planted(
    name: str, plan: object, start: datetime, end: datetime, arms: tuple[str, ...] | None
) -> PlantedDrop | None:
    """Validate an ``srm`` (``arms`` given) or ``traffic_drop`` (``arms`` None) dict."""
    if plan is None:
        return None
    if not isinstance(plan, Mapping) or not {"after", "keep"} <= set(plan):
        raise ParameterError(f"{name} must be a dict with keys 'after' and 'keep', got {plan!r}")
    keep = _number(f"{name}['keep']", plan["keep"], 0.0, 1.0, strict=True)
    after = plan["after"]
    if isinstance(after, (int, float)) and not isinstance(after, bool):
        after = start + (end - start) * _number(f"{name}['after'] (a span fraction)", after, 0, 1)
    after = _timestamp(f"{name}['after']", after)
    if not start <= after <= end:
        raise ParameterError(f"{name}['after'] must lie within [{start}, {end}], got {after}")
    if arms is not None and plan.get("arm") not in arms:
        raise ParameterError(f"{name}['arm'] must be one of {list(arms)}, got {plan.get('arm')!r}")
    return PlantedDrop(after=after, keep=keep, arm=None if arms is None else plan["arm"])


def _search_sql(x: str, cuts: list[float], leaves: list[str]) -> str:
    """SQL choosing ``leaves[k]`` where ``cuts[k] <= x < cuts[k + 1]``: a balanced ``CASE`` tree."""

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return leaves[lo]
        mid = (lo + hi) // 2
        return f"CASE WHEN {x} < {cuts[mid]!r} THEN {tree(lo, mid)} ELSE {tree(mid, hi)} END"

    return tree(0, len(leaves))


def _clock_sql(days: float, diurnal: bool, seed: int) -> tuple[str, str, float]:
    """SQL placing ``x`` in [0, total) monotonically in time: (columns, hours since start, total).

    Hour ``k`` of every day gets a share of that day's rows proportional to its rate: with
    ``diurnal``, ``1 + 0.25 sin(2 pi (k + 0.5 - 9) / 24)`` (quietest around 03:00, busiest around
    15:00 UTC), moderate enough that a planted outage stands out against the daily cycle. Each
    day's volume gets a seeded log-normal factor (sd 3%) so that the same hour differs between
    days, as real traffic does. ``x`` is first mapped through the cumulative day volumes to
    ``u``, days of equal weight; ``u`` then maps through the cumulative hourly rates to hours.
    Both maps are piecewise linear, found by ``CASE`` trees of ``days`` and 24 leaves.
    """
    wave = 0.25 if diurnal else 0.0
    rates = [1.0 + wave * math.sin(2 * math.pi * (k - 8.5) / 24) for k in range(24)]
    by_hour = [0.0, *accumulate(rates)]
    per_day, noise, by_day, leaves = by_hour[-1], random.Random(seed), [0.0], []
    for day in range(math.ceil(days)):
        length = min(24.0, days * 24 - day * 24)  # hours; the last day may be partial
        whole = int(length)
        volume = by_hour[whole] + (rates[whole] * (length - whole) if whole < 24 else 0.0)
        factor = math.exp(0.03 * noise.gauss(0.0, 1.0))
        leaves.append(f"({day * per_day!r} + (x - {by_day[-1]!r}) / {factor!r})")
        by_day.append(by_day[-1] + factor * volume)
    hours = [f"({k} + (y - {by_hour[k]!r}) / {rates[k]!r})" for k in range(24)]
    columns = (
        f"{_search_sql('x', by_day, leaves)} AS u, floor(u / {per_day!r}) AS day, u - day * {per_day!r} AS y"
    )
    return columns, f"(day * 24 + {_search_sql('y', by_hour, hours)})", by_day[-1]


def write_exposure_log(
    path: str | os.PathLike[str],
    *,
    rows: int,
    days: float = 14,
    arms: Mapping[str, float] | None = None,
    rows_per_unit: float = 5.0,
    start: str | datetime = "2026-01-05 00:00:00",
    diurnal: bool = True,
    srm: Mapping[str, object] | None = None,
    traffic_drop: Mapping[str, object] | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> ExposureLogSpec:
    """Write a synthetic exposure log (``unit_id``, ``variant``, ``ts``, ``value``) to Parquet.

    ``rows`` exposures are spread over ``days`` from ``start`` in time order, with a daily cycle
    if ``diurnal``. Each row draws its unit uniformly from a pool of ``rows / rows_per_unit``
    units, so units return across the whole span; a unit's arm comes from a hash of its id in
    proportion to the ``arms`` weights (default 50/50 control/treatment). ``value`` is a
    latency-like log-logistic number (median 120, right tail ~ x**-4) for metric checks.
    ``srm={"arm", "keep", "after"}`` loses a ``1 - keep`` share of that arm's units from
    ``after`` on (a sample-ratio mismatch); ``traffic_drop={"keep", "after"}`` keeps a ``keep``
    share of all rows from ``after`` on (an outage). ``after`` is a timestamp or a fraction of
    the span. Returns the parameters used and the number of rows actually written.
    """
    arms = {"control": 1.0, "treatment": 1.0} if arms is None else arms
    rows, seed = _integer("rows", rows, 1), _integer("seed", seed, -(2**63))
    threads = None if threads is None else _integer("threads", threads, 1)
    days = _number("days", days, 0.0, strict=True)
    rows_per_unit = _number("rows_per_unit", rows_per_unit, 1.0)
    if not isinstance(arms, Mapping) or not arms:
        raise ParameterError(f"arms must be a non-empty dict of arm name to weight, got {arms!r}")
    for name, weight in arms.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"arms keys must be non-empty strings, got {name!r}")
        _number(f"arms[{name!r}]", weight, 0.0, strict=True)
    path = os.fspath(path)
    if not isinstance(path, str) or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise ParameterError(f"path must be the path of a Parquet file to write, got {path!r}")
    start = _timestamp("start", start)
    end = start + timedelta(days=days)
    srm_plan = _planted("srm", srm, start, end, tuple(arms))
    drop_plan = _planted("traffic_drop", traffic_drop, start, end, None)

    units = max(1, round(rows / rows_per_unit))
    clock_sql, hours_sql, span_weight = _clock_sql(days, diurnal, seed)
    names, bounds = list(arms), list(accumulate(arms.values()))
    whens = "".join(
        f"WHEN arm_draw < {b / bounds[-1]!r} THEN {sql_literal(n)} "
        for n, b in zip(names[:-1], bounds[:-1], strict=True)
    )
    variant_sql = f"CASE {whens}ELSE {sql_literal(names[-1])} END" if whens else sql_literal(names[-1])
    keep_sql = ["TRUE"]
    if srm_plan is not None:
        keep_sql.append(
            f"NOT (variant = {sql_literal(str(srm_plan.arm))} AND ts >= TIMESTAMP '{srm_plan.after}'"
            f" AND {_uniform('unit_id', seed, _SALT_SRM)} >= {srm_plan.keep!r})"
        )
    if drop_plan is not None:
        keep_sql.append(
            f"NOT (ts >= TIMESTAMP '{drop_plan.after}'"
            f" AND {_uniform('i', seed, _SALT_DROP)} >= {drop_plan.keep!r})"
        )
    query = f"""
        WITH placed AS (
            SELECT i, ({_hash("i", seed, _SALT_UNIT)} % {units})::BIGINT AS unit_id,
                   {_uniform("unit_id", seed, _SALT_ARM)} AS arm_draw,
                   i * {span_weight / rows!r} AS x, {clock_sql}
            FROM range({rows}) AS r(i)
        ), rowed AS (
            SELECT i, unit_id, {variant_sql} AS variant,
                   TIMESTAMP '{start}' + to_microseconds(
                       CAST(floor({hours_sql} * 3600000000) AS BIGINT)) AS ts,
                   round(120 * pow(1 / {_uniform("i", seed, _SALT_VALUE)} - 1, -0.25), 3) AS value
            FROM placed
        )
        SELECT unit_id, variant, ts, value FROM rowed WHERE {" AND ".join(keep_sql)}
    """
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        if threads is not None:
            con.execute(f"SET threads = {threads}")
        con.execute(f"COPY ({query}) TO {sql_literal(path)} (FORMAT PARQUET, COMPRESSION ZSTD)")
        counted = con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(path)})").fetchone()
        written = counted[0] if counted is not None else 0
    finally:
        con.close()
    return ExposureLogSpec(
        path=path, rows=rows, days=days, arms=tuple((n, float(w)) for n, w in arms.items()),
        units=units, rows_per_unit=rows_per_unit, start=start, end=end, diurnal=diurnal,
        srm=srm_plan, traffic_drop=drop_plan, seed=seed, rows_written=int(written),
    )  # fmt: skip


def demo_log(path: str | os.PathLike[str]) -> ExposureLogSpec:
    """The demo preset: 3M rows over 7 days, 50/50, diurnal, with an SRM and an outage planted.

    From the middle of day 5 on, 15% of treatment units vanish (a crash on the treatment path): the
    units first seen after that are lost, so cumulative distinct units drift off 50/50 and both the
    chi-square and the sequential SRM fire. From 22:00 on the last day traffic keeps only 20% of its
    rows. A monitor evaluating at the latest exposure sees the 23:00 bin in progress (it never judges
    it) and judges the 22:00 bin, which the drop test flags against the same hour on earlier days.
    """
    return write_exposure_log(
        path, rows=3_000_000, days=7, rows_per_unit=2.0, arms={"control": 1.0, "treatment": 1.0},
        diurnal=True, srm={"arm": "treatment", "keep": 0.85, "after": "2026-01-09 12:00:00"},
        traffic_drop={"keep": 0.2, "after": "2026-01-11 22:00:00"}, seed=7,
    )  # fmt: skip
