"""Comparable fingerprints of an implementation's output, and the rules for comparing them.

* Exact implementations must match the reference (xpyrment) on every key.
* ``pandas_seed`` defines only the binned active matrix and the anomaly test like the others. Its
  matrix has no empty bins (the seed never fills them), so it is compared with the reference's
  non-empty bins (``observed_*`` keys), and its anomaly test only when the reference has no empty bin
  (otherwise the two tests legitimately see different series).
* ``xpyrment_approx`` estimates active units, so it is compared on cumulative traffic and the SRM
  tests only; :func:`relative_error` measures its active matrix against the exact one.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

ACTIVE_KEYS = (
    "variants",
    "first_bin",
    "last_bin",
    "active_shape",
    "active_total",
    "active_sha",
    "empty_bins",
)
OBSERVED_KEYS = ("variants", "observed_shape", "observed_total", "observed_sha")
ANOMALY_KEYS = ("z_score", "anomaly_detected")
EXACT_PARTS_KEYS = ("cumulative_sha", "cumulative_last", "chi_p", "stopped_index", "last_lr")
ALL_KEYS = ACTIVE_KEYS + OBSERVED_KEYS[1:] + ANOMALY_KEYS + EXACT_PARTS_KEYS


def _matrix(rows: list[list[int]], variants: list[str]) -> np.ndarray:
    """The int64 matrix of ``rows`` with one column per variant (also when there are no rows)."""
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(variants))


def _sha(matrix: np.ndarray) -> str:
    """First 16 hex digits of sha256 over the C-ordered little-endian int64 bytes."""
    data = np.ascontiguousarray(matrix, dtype="<i8").tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _significant(value: float | str | None, digits: int = 9) -> str:
    """``value`` to ``digits`` significant digits; ``"inf"`` and ``"n/a"`` pass through."""
    if value is None:
        return "n/a"
    if value == "inf" or (isinstance(value, float) and math.isinf(value)):
        return "inf"
    return f"{float(value):.{digits}g}"


def checksums(output: dict[str, Any]) -> dict[str, Any]:
    """Fingerprint every compared part of ``output`` (see ``baselines.common`` for its fields)."""
    variants = list(output["variants"])
    active = _matrix(output["active"], variants)
    cumulative = _matrix(output["cumulative"], variants)
    observed = active[active.sum(axis=1) > 0]
    bins = output["bins"]
    z_score = round(float(output["anomaly"]["z_score"]), 9) + 0.0
    return {
        "variants": ",".join(variants),
        "first_bin": bins[0] if bins else "",
        "last_bin": bins[-1] if bins else "",
        "active_shape": "x".join(map(str, active.shape)),
        "active_total": int(active.sum()),
        "active_sha": _sha(active),
        "empty_bins": int((active.sum(axis=1) == 0).sum()),
        "observed_shape": "x".join(map(str, observed.shape)),
        "observed_total": int(observed.sum()),
        "observed_sha": _sha(observed),
        "z_score": f"{z_score:.9f}",
        "anomaly_detected": bool(output["anomaly"]["anomaly_detected"]),
        "cumulative_sha": _sha(cumulative),
        "cumulative_last": [int(v) for v in cumulative[-1]] if len(cumulative) else [],
        "chi_p": _significant(output["chi_square"]["p_value"]),
        "stopped_index": int(output["sprt"]["stopped_index"]),
        "last_lr": _significant(output["sprt"].get("last_lr")),
    }


def compared_keys(output: dict[str, Any], reference: dict[str, Any]) -> tuple[str, ...]:
    """The checksum keys ``output`` must share with the exact ``reference``, by its semantics."""
    semantics = output["semantics"]
    if semantics["active"] == "approx":
        return ("variants", *EXACT_PARTS_KEYS)
    if semantics["cumulative"] == "seed":
        anomaly = ANOMALY_KEYS if checksums(reference)["empty_bins"] == 0 else ()
        return OBSERVED_KEYS + anomaly
    return ALL_KEYS


def mismatches(output: dict[str, Any], reference: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (output's, reference's)}`` for every compared key that differs; empty when all agree."""
    mine, theirs = checksums(output), checksums(reference)
    return {k: (mine[k], theirs[k]) for k in compared_keys(output, reference) if mine[k] != theirs[k]}


def relative_error(output: dict[str, Any], reference: dict[str, Any]) -> dict[str, float] | None:
    """Mean and max of ``|a - e| / e`` over the reference's non-zero active cells (same grid only)."""
    approx = _matrix(output["active"], output["variants"])
    exact = _matrix(reference["active"], reference["variants"])
    if approx.shape != exact.shape or output["bins"] != reference["bins"]:
        return None
    cells = exact > 0
    if not cells.any():
        return {"mean": 0.0, "max": 0.0}
    error = np.abs(approx[cells] - exact[cells]) / exact[cells]
    return {"mean": float(error.mean()), "max": float(error.max())}


def overcount(seed_output: dict[str, Any], reference: dict[str, Any]) -> float | None:
    """Seed's cumulative total (sum of its last cumulative row) / true distinct units - 1."""
    seed_total = sum(checksums(seed_output)["cumulative_last"])
    true_total = sum(checksums(reference)["cumulative_last"])
    return seed_total / true_total - 1 if true_total else None
