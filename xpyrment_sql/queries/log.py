"""The SQL a run sends, recorded from Ibis' verbose log and named by the check each statement serves.

Ibis logs every statement it compiles for execution (``ibis.options.verbose``) right before the backend
runs it. Recording that log gives the report the exact SQL that ran, and the progress indicator the
name of the check whose query is running, without touching a connection. The previous verbose settings
are restored afterwards, and statements are still passed on to a logger that was already active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ibis

_CHECK_MARKERS = (
    ('"pair_units"', "multiple exposure"),
    ("'pair' AS", "traffic matrix and multiple exposure (anomaly, SRM tests)"),
    ('"active"', "traffic matrix (anomaly, chi-square and anytime-valid SRM)"),
    ('"value__', "metric moments (guardrails)"),
    ('AS "rows"', "time span of the log"),
    ('AS "units"', "distinct units per variant"),
)
"""Output columns that only one query of ``queries.py``/``moments.py`` produces, and its check."""


def check_name(sql: str) -> str:
    """The check a statement serves, recognised by its output columns (``"query"`` if unknown)."""
    return next((name for marker, name in _CHECK_MARKERS if marker in sql), "query")


@contextmanager
def recording_sql(on_statement: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """Collect every SQL statement Ibis executes inside the block, in order.

    Args:
        on_statement: Called with each statement just before it runs (e.g. to show progress).

    Yields:
        The list the statements are appended to.
    """
    statements: list[str] = []
    was_verbose, previous_log = ibis.options.verbose, ibis.options.verbose_log

    def record(sql: str) -> None:
        statements.append(sql)
        if on_statement is not None:
            on_statement(sql)
        if was_verbose:
            (previous_log or print)(sql)

    ibis.options.verbose, ibis.options.verbose_log = True, record
    try:
        yield statements
    finally:
        ibis.options.verbose, ibis.options.verbose_log = was_verbose, previous_log
