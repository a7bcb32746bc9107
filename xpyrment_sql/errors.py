"""The exception hierarchy: every mistake a user can make surfaces as an ``XpyrmentError``.

``XpyrmentError`` subclasses ``ValueError`` so callers that already catch ``ValueError`` keep working.
Each message names the offending column, parameter or value and says what was expected.

Examples:
    >>> from xpyrment_sql.bins import parse_freq
    >>> try:
    ...     parse_freq("fortnight")
    ... except ValueError as error:
    ...     print(type(error).__name__, isinstance(error, XpyrmentError))
    ParameterError True
"""

from __future__ import annotations

from collections.abc import Iterable


class XpyrmentError(ValueError):
    """Base class of every error this library raises for bad input."""


class SourceError(XpyrmentError):
    """The data source cannot be opened or read (path, URL, table name, unsupported object)."""


class ColumnError(XpyrmentError):
    """A named column is missing or has a type the check cannot use."""


class ParameterError(XpyrmentError):
    """A parameter value is outside what the check accepts."""


class DataError(XpyrmentError):
    """The data itself breaks an assumption (unparseable timestamps, no rows where some are needed)."""


class BackendError(XpyrmentError):
    """The backend cannot run a query a check needs (an engine without window functions, say)."""


MAX_LISTED = 10
"""Values named in one error message; a wrong column can hold 100,000 "variants"."""


def listed(values: Iterable[object], limit: int = MAX_LISTED) -> str:
    """``values`` as ``'a', 'b', ...`` for a message: at most ``limit`` of them, then how many more.

    Examples:
        >>> listed(["control", "treatment"])
        "'control', 'treatment'"
        >>> listed(range(100_000), limit=3)
        '0, 1, 2, ... and 99,997 more'
    """
    items = list(values)
    shown = ", ".join(map(repr, items[:limit]))
    return shown + (f", ... and {len(items) - limit:,} more" if len(items) > limit else "")
