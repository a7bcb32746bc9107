"""The ``xpyrment-sql`` command line: ``check``, ``report``, ``sql`` and ``demo``.

:func:`main` is the console script's entry point (``xpyrment_sql.cli:main``); see
:mod:`xpyrment_sql.cli.main` for the modules behind it.
"""

from __future__ import annotations

from xpyrment_sql.cli.main import main

__all__ = ["main"]
