"""Column roles: a named column must exist, and the unit column is chosen by one stated rule.

A source has a time, a variant and a unit column. Each is checked against the schema read once at
construction, so a wrong name is reported with the columns that exist, before any query runs; and a
column never plays two roles.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis.expr.datatypes as dt

from xpyrment_sql.errors import ColumnError

UNIT_RULES: Mapping[str, str] = {
    "given": "given as unit_col",
    "unit_id": "the column named unit_id",
    "first other column": "first column that is not the time or variant column",
}
"""How the unit column was chosen (``Source.unit_rule``) -> how outputs say it."""


def require_column(schema: Mapping[str, dt.DataType], name: str, role: str) -> str:
    """Return ``name`` if ``schema`` has it, else raise a ColumnError naming the role and columns."""
    if not isinstance(name, str) or name not in schema:
        raise ColumnError(
            f"{role}={name!r} is not a column of the data; columns are: {', '.join(map(str, schema))}"
        )
    return name


def unit_column(
    schema: Mapping[str, dt.DataType], unit_col: str | None, time_col: str | None, variant_col: str
) -> tuple[str, str]:
    """The unit column and the rule that chose it (a key of :data:`UNIT_RULES`).

    A unit column that is also the time column would make every row its own "unit", and one that is
    also the variant column would make every arm one unit, so neither is ever taken, nor accepted.
    Without a time column (``time_col=None``) only the variant column is excluded.
    """
    roles = {"variant_col": variant_col}
    if time_col is not None:
        roles = {"time_col": time_col, **roles}
    if unit_col is not None:
        name = require_column(schema, unit_col, "unit_col")
        for role, other in roles.items():
            if name == other:
                raise ColumnError(
                    f"unit_col={name!r} is also {role}; the unit column identifies the randomised "
                    "unit (a user, a session) and must be another column"
                )
        return name, "given"
    others = [name for name in schema if name not in roles.values()]
    if "unit_id" in others:
        return "unit_id", "unit_id"
    if others:
        return others[0], "first other column"
    taken = " and ".join(f"{role}={name!r}" for role, name in roles.items())
    raise ColumnError(
        f"no column can be the unit column: the data has only {', '.join(map(str, schema))}, which "
        f"{'are' if len(roles) > 1 else 'is'} {taken}; add a column identifying each unit and name it "
        "with unit_col="
    )
