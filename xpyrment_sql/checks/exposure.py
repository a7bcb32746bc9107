"""Multiple exposure: units seen under more than one variant, in total and per pair of variants."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.results import MultipleExposureResult
from xpyrment_sql.source import Source


def multiple_exposure(
    source: Source, variant_col: str, until: pd.Timestamp | None, max_share: float
) -> MultipleExposureResult:
    """Units seen under more than one variant, per pair of variants (one grouped query).

    ``share = multiple_units / units``; the check fires when ``share > max_share``.
    """
    query = queries.multiple_exposure_counts(source, variant_col, until)
    frame = source.execute(query, "the multiple-exposure query (check_multiple_exposure)")
    pairs = frame.dropna(subset=["pair_units"])
    return exposure_result(
        int(frame["units"].iloc[0]),
        int(frame["multiple"].fillna(0).iloc[0]),
        pairs["first_variant"].tolist(),
        pairs["second_variant"].tolist(),
        pairs["pair_units"].to_numpy(dtype=np.int64),
        max_share,
    )


def exposure_from_events(counts: pd.DataFrame, max_share: float) -> MultipleExposureResult:
    """The check from the events per bin of the traffic matrix's query (no query of its own).

    Totals are sums over bins: ``units`` of the ``"units"`` rows, ``multiple_units`` of the
    ``"multiple"`` rows, and each pair's units of its ``"pair"`` rows (see
    :mod:`xpyrment_sql.queries.events`).
    """

    def total(part: str) -> int:
        return int(counts.loc[counts["part"] == part, "units"].sum())

    pairs = counts[counts["part"] == "pair"]
    per_pair = pairs.groupby(["variant", "second_variant"], sort=False)["units"].sum()
    return exposure_result(
        total("units"),
        total("multiple"),
        per_pair.index.get_level_values(0).tolist(),
        per_pair.index.get_level_values(1).tolist(),
        per_pair.to_numpy(dtype=np.int64),
        max_share,
    )


def exposure_result(
    units: int,
    multiple: int,
    first: list[object],
    second: list[object],
    shared: np.ndarray,
    max_share: float,
) -> MultipleExposureResult:
    """The record from the totals and the units shared per pair of variants (``first < second``)."""
    pairs = pd.DataFrame({"first_variant": first, "second_variant": second, "units": shared})
    pairs = pairs.sort_values(
        ["units", "first_variant", "second_variant"], ascending=[False, True, True], kind="stable"
    )
    pairs = pairs.reset_index(drop=True)
    share = multiple / units if units else 0.0
    detected = share > max_share
    head = (
        f"{multiple:,} of {units:,} units ({share:.2%}) were seen under more than one variant"
        f"{', above' if detected else ', within'} max_share={max_share:.2%}."
    )
    shown = "; ".join(
        f"{r.first_variant} & {r.second_variant}: {r.units:,}" for r in pairs.head(3).itertuples()
    )
    return MultipleExposureResult(
        multiple_exposure_detected=detected,
        message=f"{head} Units shared per pair: {shown}." if shown else head,
        units=units,
        multiple_units=multiple,
        share=share,
        max_share=max_share,
        pairs=pairs,
    )
