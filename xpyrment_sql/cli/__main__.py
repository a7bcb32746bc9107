"""``python -m xpyrment_sql.cli``: the same as the ``xpyrment-sql`` console script."""

import sys

from xpyrment_sql.cli.main import main

sys.exit(main())
