"""``python -m xpyrment_sql.cli``: the same as the ``xpyrment-sql`` console script."""

from __future__ import annotations

import sys

from xpyrment_sql.cli.main import main

sys.exit(main())
