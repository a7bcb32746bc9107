"""Write a synthetic exposure log for the benchmarks (a CLI around ``write_exposure_log``).

    python -m benchmarks.generate --rows 1e6 --days 14 --arms control=1,treatment=1 \\
        --srm treatment:0.7:0.3 --seed 0 [--out PATH]

``--srm ARM:KEEP:AFTER`` loses a ``1 - KEEP`` share of ARM's units from the span fraction AFTER on
(``none`` for a healthy log). The default, 0.7 from 30% of the span, is strong enough for the SPRT to
cross already at 100k rows, so every size exercises its first-crossing search (units seen before AFTER
stay, so the loss is only among late first exposures); ``--drop KEEP:AFTER`` plants an outage of
all rows. Without ``--out`` the file goes to ``benchmarks/data/`` under a name that spells out every
parameter, so an existing file is reused instead of rewritten (``--force`` rewrites). The path is
printed on stdout. Files are written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from xpyrment_sql.synthetic import write_exposure_log

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ARMS = "control=1,treatment=1"
DEFAULT_SRM = "treatment:0.7:0.3"


def parse_rows(text: str | float) -> int:
    """``"1e6"``, ``"2_000_000"`` or ``1e6`` -> an int row count."""
    value = float(str(text).replace("_", ""))
    if value < 1 or value != int(value):
        raise ValueError(f"rows must be a positive whole number, got {text!r}")
    return int(value)


def rows_label(rows: int) -> str:
    """A short size label: 100k, 1M, 10M, 1B (falls back to the plain number)."""
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if rows >= size and rows % size == 0:
            return f"{rows // size}{unit}"
    return str(rows)


def parse_arms(text: str) -> dict[str, float]:
    """``"control=1,treatment=1"`` -> ``{"control": 1.0, "treatment": 1.0}``."""
    arms = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        arms[name.strip()] = float(weight) if weight else 1.0
    return arms


def parse_srm(text: str | None) -> dict[str, object] | None:
    """``"treatment:0.9:0.5"`` -> ``{"arm": "treatment", "keep": 0.9, "after": 0.5}``; ``none`` -> None."""
    if text is None or text.lower() in ("", "none"):
        return None
    arm, keep, after = text.split(":")
    return {"arm": arm, "keep": float(keep), "after": float(after)}


def parse_drop(text: str | None) -> dict[str, float] | None:
    """``"0.01:0.9"`` (KEEP:AFTER) -> ``{"keep": 0.01, "after": 0.9}``; ``none`` -> None."""
    if text is None or text.lower() in ("", "none"):
        return None
    keep, after = text.split(":")
    return {"keep": float(keep), "after": float(after)}


def default_path(
    rows: int,
    days: float,
    arms: str,
    srm: str | None,
    seed: int,
    rows_per_unit: float,
    data_dir: Path,
    drop: str | None = None,
) -> Path:
    """A file name in ``data_dir`` that encodes every generation parameter."""
    arm_tag = "-".join(f"{name}{weight:g}" for name, weight in parse_arms(arms).items())
    plan, outage = parse_srm(srm), parse_drop(drop)
    tags = [f"exposures_{rows_label(rows)}", f"{days:g}d", f"{rows_per_unit:g}rpu", arm_tag]
    tags.append("nosrm" if plan is None else f"srm-{plan['arm']}-{plan['keep']:g}-{plan['after']:g}")
    if outage is not None:
        tags.append(f"drop-{outage['keep']:g}-{outage['after']:g}")
    return data_dir / f"{'_'.join(tags)}_s{seed}.parquet"


def ensure_log(
    rows: int,
    *,
    days: float = 14,
    arms: str = DEFAULT_ARMS,
    srm: str | None = DEFAULT_SRM,
    seed: int = 0,
    rows_per_unit: float = 5.0,
    drop: str | None = None,
    out: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> str:
    """Path of the requested log, written first if missing (or if ``force``)."""
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    path = (
        Path(out)
        if out is not None
        else default_path(rows, days, arms, srm, seed, rows_per_unit, folder, drop)
    )
    if path.exists() and not force:
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    write_exposure_log(
        partial,
        rows=rows,
        days=days,
        arms=parse_arms(arms),
        rows_per_unit=rows_per_unit,
        srm=parse_srm(srm),
        traffic_drop=parse_drop(drop),
        seed=seed,
    )
    partial.replace(path)
    return str(path)


def main(argv: Sequence[str] | None = None) -> str:
    """Parse the command line, write (or reuse) the log and print its path."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1e6", help="exposure rows, e.g. 1e6 .. 1e9")
    parser.add_argument("--days", type=float, default=14.0, help="span of the log in days")
    parser.add_argument("--arms", default=DEFAULT_ARMS, help="name=weight,... (default 50/50)")
    parser.add_argument("--srm", default=DEFAULT_SRM, help="ARM:KEEP:AFTER, or none")
    parser.add_argument("--drop", help="KEEP:AFTER, keep a KEEP share of all rows from AFTER on")
    parser.add_argument("--rows-per-unit", type=float, default=5.0, help="mean exposures per unit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output Parquet file (default: benchmarks/data/<parameters>.parquet)")
    parser.add_argument("--data-dir", help="folder for the default file name")
    parser.add_argument("--force", action="store_true", help="rewrite an existing file")
    args = parser.parse_args(argv)
    path = ensure_log(
        parse_rows(args.rows),
        days=args.days,
        arms=args.arms,
        srm=args.srm,
        seed=args.seed,
        rows_per_unit=args.rows_per_unit,
        drop=args.drop,
        out=args.out,
        data_dir=args.data_dir,
        force=args.force,
    )
    print(path)
    return path


if __name__ == "__main__":
    main()
