"""Entry point of the ``xpyrment-sql`` console script: parse the options, run the command, exit.

Thin on purpose; each job lives in its own module:

* :mod:`~xpyrment_sql.cli.options`: the argparse definitions and the compact metric/guardrail syntax;
* :mod:`~xpyrment_sql.cli.commands`: ``check``, ``report``, ``sql`` and ``demo``;
* :mod:`~xpyrment_sql.cli.run`: one run of the checks, collected into the record the report renders;
* :mod:`~xpyrment_sql.cli.output`: printing that a closed pipe cannot break;
* :mod:`~xpyrment_sql.cli.progress`: the progress line on terminals.

Exit codes: 0 healthy, 1 an alert fired, 2 bad input (any :class:`~xpyrment_sql.errors.XpyrmentError`,
printed as one ``error: ...`` line on stderr, without a traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xpyrment_sql.cli.commands import COMMANDS, EXIT_BAD_INPUT, EXIT_HEALTHY
from xpyrment_sql.cli.options import build_parser
from xpyrment_sql.cli.output import discard, emit
from xpyrment_sql.errors import XpyrmentError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpyrment-sql`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:
        discard(sys.stdout)
        return EXIT_HEALTHY
    try:
        return COMMANDS[args.command](args)
    except XpyrmentError as exc:
        emit(f"error: {exc}", sys.stderr)
        return EXIT_BAD_INPUT
