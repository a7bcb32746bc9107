"""Multiple exposure: units seen under more than one variant, in total and per pair of variants."""

from __future__ import annotations

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.results import MultipleExposureResult
from xpyrment_sql.source import Source


def multiple_exposure(
    source: Source,
    variant_col: str,
    until: pd.Timestamp | None,
    max_share: float,
    query: ir.Table | None = None,
) -> MultipleExposureResult:
    """Units seen under more than one variant, per pair of variants (one grouped query).

    ``share = multiple_units / units``; the check fires when ``share > max_share``. ``query`` replaces
    the query over the log's rows (an incremental run counts the pairs in its state file instead).
    """
    if query is None:
        query = queries.multiple_exposure_counts(source, variant_col, until)
    frame = source.execute(query, "the multiple-exposure query (check_multiple_exposure)")
    units = int(frame["units"].iloc[0])
    multiple = int(frame["multiple"].fillna(0).iloc[0])
    pairs = frame.dropna(subset=["pair_units"])
    pairs = pd.DataFrame(
        {
            "first_variant": pairs["first_variant"].tolist(),
            "second_variant": pairs["second_variant"].tolist(),
            "units": pairs["pair_units"].to_numpy(dtype=np.int64),
        }
    )
    pairs = pairs.sort_values(["units", "first_variant"], ascending=[False, True], kind="stable")
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
