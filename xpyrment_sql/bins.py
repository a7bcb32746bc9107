"""Time bins as integers: parsing ``freq`` aliases, local-time offsets, and bin labels.

A bin is identified by an integer key computed in the backend from epoch seconds, which every SQL
engine supports (unlike ``date_trunc`` to 15 minutes or to local midnight)::

    key = floor((epoch + utc_offset(epoch) + origin) / width)

``width`` is the bin length in seconds, ``origin`` shifts week bins so that they start on Monday
(1970-01-01 was a Thursday), and ``utc_offset`` is zero except for day and week bins with a time zone,
where it is the zone's offset at that instant, so that day bins start at local midnight.
Sub-daily bins are always intervals of absolute time aligned to UTC; with a time zone only their
labels are shown in local time (a local-clock hour bin would vanish or double at daylight-saving
changes). Keys of consecutive bins are consecutive integers, so filling empty bins is ``arange``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo

import numpy as np
import pandas as pd

from xpyrment_sql.errors import ParameterError

_DAY = 86_400
_WEEK_ORIGIN = 3 * _DAY
_ALIAS = re.compile(r"^(?P<n>[1-9]\d*)?(?P<unit>min|T|h|H|D|W)$")
_UNIT_SECONDS = {"min": 60, "T": 60, "h": 3_600, "H": 3_600, "D": _DAY, "W": 7 * _DAY}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class BinSpec:
    """How timestamps are cut into bins.

    Attributes:
        freq: The alias the user gave (``"15min"``, ``"h"``, ``"D"``, ``"W"``).
        width: Bin length in seconds.
        origin: Seconds added before flooring (3 days for Monday-based weeks, else 0).
        tz: IANA zone name whose local midnight starts day and week bins, or ``None`` for UTC.
    """

    freq: str
    width: int
    origin: int
    tz: str | None

    @property
    def is_calendar(self) -> bool:
        """True for day and week bins, the only ones whose edges follow the local clock."""
        return self.width % _DAY == 0

    @property
    def uses_local_offset(self) -> bool:
        """True when the backend must add the zone's UTC offset before flooring."""
        return self.tz is not None and self.is_calendar

    def key_of(self, when: pd.Timestamp) -> int:
        """The bin key of one instant, computed in Python exactly as the backend computes it."""
        instant = as_utc(when)
        epoch = int((instant - pd.Timestamp(0, tz="UTC")).total_seconds())
        offset = 0
        if self.uses_local_offset:
            offset = int(instant.tz_convert(self.tz).utcoffset().total_seconds())
        return (epoch + offset + self.origin) // self.width

    def labels(self, keys: np.ndarray) -> pd.DatetimeIndex:
        """Start time of each bin: naive UTC without ``tz``, else aware local time."""
        starts = np.asarray(keys, dtype=np.int64) * self.width - self.origin
        stamps = pd.to_datetime(starts, unit="s")
        if self.tz is None:
            return pd.DatetimeIndex(stamps, name="bin")
        if self.is_calendar:
            local = stamps.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
            return pd.DatetimeIndex(local, name="bin")
        return pd.DatetimeIndex(stamps.tz_localize("UTC").tz_convert(self.tz), name="bin")


def parse_freq(freq: str, tz: str | None = None) -> BinSpec:
    """Parse a pandas-style alias: ``min``, ``15min``, ``h``/``H``, ``6h``, ``D``, ``W``.

    ``W`` means weeks starting Monday 00:00. Multiples are accepted for minutes and hours only.

    Raises:
        ParameterError: for an unknown alias, a multiple of ``D`` or ``W``, or an unknown zone.

    Examples:
        >>> parse_freq("15min")
        BinSpec(freq='15min', width=900, origin=0, tz=None)
        >>> week = parse_freq("W", tz="Europe/Berlin")
        >>> week.width, week.origin, week.uses_local_offset
        (604800, 259200, True)
        >>> parse_freq("2D")
        Traceback (most recent call last):
        ...
        xpyrment_sql.errors.ParameterError: freq='2D' is not a supported bin size; ...
    """
    match = _ALIAS.match(freq) if isinstance(freq, str) else None
    if match is None or (match["n"] and match["unit"] in {"D", "W"}):
        raise ParameterError(
            f"freq={freq!r} is not a supported bin size; expected one of 'min', '<n>min' "
            "(e.g. '15min'), 'h'/'H', '<n>h', 'D' or 'W'"
        )
    width = int(match["n"] or 1) * _UNIT_SECONDS[match["unit"]]
    origin = _WEEK_ORIGIN if match["unit"] == "W" else 0
    return BinSpec(freq=freq, width=width, origin=origin, tz=check_tz(tz))


def check_tz(tz: str | None) -> str | None:
    """Return ``tz`` if it names an IANA time zone (or is ``None``)."""
    if tz is None:
        return None
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ParameterError(
            f"tz={tz!r} is not a known IANA time zone; expected a name like 'Europe/Berlin'"
        ) from exc
    return tz


def utc_offsets(tz: str, end: pd.Timestamp) -> list[tuple[int, int]]:
    """The zone's UTC offset as a step function of epoch seconds, from 1970 until ``end``.

    Returns ``[(since_epoch, offset_seconds), ...]`` sorted by ``since_epoch``; the first entry starts at
    ``-inf`` in effect (its ``since_epoch`` is the smallest 64-bit integer). Transitions are found by
    stepping one day at a time and bisecting to the second, which needs nothing beyond ``zoneinfo``.
    """
    zone = zoneinfo.ZoneInfo(tz)
    last_day = int((as_utc(end) - pd.Timestamp(0, tz="UTC")).total_seconds()) // _DAY + 1

    def offset_at(epoch: int) -> int:
        when = _EPOCH + dt.timedelta(seconds=epoch)
        offset = when.astimezone(zone).utcoffset()  # never None: ``when`` is aware
        return int(offset.total_seconds()) if offset is not None else 0

    steps = [(np.iinfo(np.int64).min, offset_at(0))]
    for day in range(last_day):
        lo, hi = day * _DAY, (day + 1) * _DAY
        if offset_at(hi) == offset_at(lo):
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset_at(mid) == offset_at(lo) else (lo, mid)
        steps.append((hi, offset_at(hi)))
    return steps


def as_utc(when: pd.Timestamp | str | dt.datetime) -> pd.Timestamp:
    """Read ``when`` as an instant: naive values are taken to be UTC."""
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


Chunk = tuple[pd.Timestamp | None, pd.Timestamp | None]

# Measured on 2 cores with DuckDB 2.0: deduplicating 10M rows took 3.2 s in one pass, 2.2 s in 14
# chunks and 1.2 s in 56 (a chunk's hash table stays in cache); past a few hundred chunks the fixed
# cost of each UNION ALL branch (~25 ms) dominates. The whole 100M-row run took 26.2 s with 250k-row
# chunks, 23.3 s with 500k, 22.5 s with 1M and 23.1 s with 2M.
CHUNK_ROWS = 1_000_000
MAX_CHUNKS = 400


def time_chunks(
    bins: BinSpec, first: pd.Timestamp, last: pd.Timestamp, rows: int, target_rows: int = CHUNK_ROWS
) -> list[Chunk]:
    """Split ``[first, last]`` into whole-bin time ranges of about ``target_rows`` rows each.

    Distinct (bin, variant, unit) triples never span two bins, so each chunk can be deduplicated on
    its own: the hash table holds one chunk's triples instead of the whole log's, which keeps it in
    cache and memory small. On time-ordered Parquet each chunk reads only its own row groups. The
    first and last chunks are open-ended, so rows outside ``[first, last]`` are still counted.

    Returns:
        ``[(since, before), ...]`` as aware UTC instants, ``None`` for an open end.
    """
    first_key, last_key = bins.key_of(first), bins.key_of(last)
    n_bins = last_key - first_key + 1
    count = int(min(max(1, -(-rows // target_rows)), n_bins, MAX_CHUNKS))
    step = -(-n_bins // count)
    inner = np.arange(first_key + step, last_key + 1, step)
    edges: list[pd.Timestamp | None] = [as_utc(t) for t in bins.labels(inner)]
    return list(zip([None, *edges], [*edges, None], strict=True))
