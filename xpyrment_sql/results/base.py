"""The base of every record, and the conversion of its values to plain JSON-able Python.

Every check returns a frozen dataclass derived from :class:`Result`. ``res.p_value`` and
``res["p_value"]`` both work, so code written against the seed's dicts keeps running; ``res.to_dict()``
gives plain JSON-able values (numpy scalars and arrays become Python numbers and lists, nested records
become dicts, frames become lists of records).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` into plain Python (dict, list, str, int, float, bool, None) for JSON.

    Non-finite floats become ``None`` because JSON has no NaN or infinity.

    Examples:
        >>> import numpy as np
        >>> to_jsonable({"counts": np.array([3, 4]), "share": np.float64(0.5), "z": float("nan")})
        {'counts': [3, 4], 'share': 0.5, 'z': None}
    """
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        frame = value.reset_index()
        return [to_jsonable(row) for row in frame.to_dict(orient="records")]
    if isinstance(value, pd.Index):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def frozen_array(values: npt.ArrayLike, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
    """A read-only copy of ``values``: records hold arrays nobody can change behind their back.

    Examples:
        >>> counts = frozen_array([3, 4])
        >>> counts.flags.writeable
        False
    """
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


@dataclasses.dataclass(frozen=True)
class Result(Mapping[str, Any]):
    """Base of every result record: attribute access plus the read-only mapping protocol.

    Examples:
        >>> from xpyrment_sql.results import DispatchOutcome
        >>> outcome = DispatchOutcome("srm", succeeded=("slack:hooks.slack.com",), failed=())
        >>> outcome["alert_type"], outcome.alert_type, outcome.ok
        ('srm', 'srm', True)
        >>> list(outcome)
        ['alert_type', 'succeeded', 'failed', 'deliveries']
        >>> outcome.to_dict()
        {'alert_type': 'srm', 'succeeded': ['slack:hooks.slack.com'], 'failed': [], 'deliveries': []}
    """

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-able Python values."""
        return {name: to_jsonable(getattr(self, name)) for name in self._field_names()}
