"""Run one implementation once, in this process, and write its output JSON: ``run.py``'s child.

    python -m benchmarks.worker IMPL PATH FREQ RATIOS [--out FILE]

The output dict gains ``timing``: ``import_s`` (importing the implementation's module and its
libraries, numpy and scipy included: nothing heavy is imported before the clock starts) and ``run_s``
(``run()`` itself: reading the log, aggregating, statistics). Exit codes:
0 ok, 3 ``MemoryError``, 2 any other exception (traceback on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence

from benchmarks.baselines import ALL

EXIT_ERROR, EXIT_MEMORY = 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    """Import ``IMPL``, time ``run(PATH, FREQ, RATIOS)``, write the JSON, return the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("impl", choices=ALL)
    parser.add_argument("path")
    parser.add_argument("freq")
    parser.add_argument("ratios", help="comma-separated, sorted-variant order")
    parser.add_argument("--out", help="write the JSON here instead of stdout")
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        module = importlib.import_module(f"benchmarks.baselines.{args.impl}")
        imported = time.perf_counter()
        output = module.run(args.path, args.freq, [float(r) for r in args.ratios.split(",") if r.strip()])
        finished = time.perf_counter()
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        return EXIT_MEMORY
    except Exception:
        traceback.print_exc()
        return EXIT_ERROR
    output["timing"] = {"import_s": imported - started, "run_s": finished - imported}
    text = json.dumps(output)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
