"""The ``xpyrment-sql`` command line: ``check``, ``report``, ``sql`` and ``demo``."""

from xpyrment_sql.cli.main import main

__all__ = ["main"]
