"""The traffic-drop check: the judged bin of a traffic matrix, handed to the drop test in ``stats``.

Only complete bins are judged. The last bin, when it is still in progress at the evaluation instant,
holds part of its traffic (a cron run at 14:37 sees 37 minutes of the 14:00 bin), so calling it a
drop would page someone on every mid-bin run; it is reported as ``unfinished_bin`` instead, and the
bin before it is judged against its history.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xpyrment_sql.bins import parse_freq
from xpyrment_sql.results import TrafficAnomalyResult, TrafficMatrix
from xpyrment_sql.stats import anomaly


def judge_traffic_drop(
    matrix: TrafficMatrix,
    method: str,
    window: int,
    z_threshold: float | None,
    drop_threshold: float,
) -> TrafficAnomalyResult:
    """The drop test on the latest complete bin of ``matrix``'s total active units.

    Args:
        matrix: The traffic matrix (its ``unfinished`` flag says whether the last bin is complete).
        method: ``"seasonal"`` or ``"zscore"`` (see :func:`xpyrment_sql.stats.anomaly.drop_test`).
        window: Bins in the z-score test's baseline.
        z_threshold: A z-score below ``-z_threshold`` is a drop; ``None`` for the method's default.
        drop_threshold: Relative drop flagged when the z-score baseline has no variance.
    """
    complete = matrix.complete_bins
    volumes = matrix.active.sum(axis=1)[:complete] if matrix.variants else np.zeros(0)
    result = anomaly.drop_test(
        volumes,
        bin_seconds=parse_freq(matrix.freq).width,
        method=method,
        window=window,
        z_threshold=z_threshold,
        drop_threshold=drop_threshold,
    )
    judged = matrix.bins[complete - 1] if complete > 0 else None
    unfinished = matrix.bins[-1] if matrix.unfinished and len(matrix.bins) else None
    return dataclasses.replace(
        result,
        judged_bin=judged,
        unfinished_bin=unfinished,
        message=_judged_message(judged, unfinished) + result.message,
    )


def _judged_message(judged: object, unfinished: object) -> str:
    """Which bin was judged, and which one was left alone for being unfinished."""
    if judged is None:
        note = "No complete bin to judge yet"
        return note + (f" ({unfinished} is in progress). " if unfinished is not None else ". ")
    note = f"Judged bin {judged}"
    return note + (f" ({unfinished} is in progress, not judged): " if unfinished is not None else ": ")
