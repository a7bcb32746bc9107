"""Time every implementation on synthetic logs of growing size and write ``benchmarks/RESULTS.md``.

    python -m benchmarks.run --rows 1e6,1e7,1e8 --impls xpyrment,duckdb_sql,polars_lazy,pandas_seed \\
        --repeats 3 --freq h --timeout 1800 [--mem-limit 8GB] [--approx]
    python -m benchmarks.run --smoke [--write]

For each size the log is generated if missing (``generate.ensure_log``) and read once to warm the page
cache. Each repeat then runs every implementation in its own child process (``benchmarks.worker``), rotating
their order between repeats. A child is started by a tiny launcher (``launch.py``) that reaps it with
``os.wait4``, whose resource usage is that child's alone: peak RSS is its ``ru_maxrss``. A child that exits
non-zero, is killed (out of memory) or exceeds ``--timeout`` counts as a failure with its reason; an
implementation that failed is not run again at that size or at larger ones. Checksums
(``benchmarks.checksums``) of every successful run are compared with the reference implementation (xpyrment,
else the first exact one that succeeded).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import checksums as cs
from benchmarks.baselines import ALL, APPROX, EXACT, SEED
from benchmarks.baselines.common import parse_ratios
from benchmarks.generate import DEFAULT_ARMS, DEFAULT_SRM, ensure_log, parse_rows, rows_label

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
LAUNCH = Path(__file__).resolve().parent / "launch.py"
DEFAULT_IMPLS = "xpyrment,duckdb_sql,polars_lazy,pandas_seed"
SMOKE_ROWS = 100_000
TIMES = "\N{MULTIPLICATION SIGN}"
PATH_OPTIONS = ("--data-dir", "--results", "--json")
VERSIONS = ("xpyrment-sql", "duckdb", "ibis-framework", "polars", "pandas", "pyarrow", "numpy", "scipy")


@dataclasses.dataclass
class Run:
    """One child process: its timings, peak RSS, and output or failure reason."""

    impl: str
    repeat: int
    ok: bool
    wall_s: float
    max_rss_kb: int
    run_s: float | None = None
    import_s: float | None = None
    reason: str | None = None
    output: dict[str, Any] | None = None


@dataclasses.dataclass
class Size:
    """Every run at one log size, with the log's description and the comparison verdicts."""

    rows: int
    path: str
    file_bytes: int
    runs: dict[str, list[Run]]
    skipped: dict[str, str]
    reference: str | None = None
    verdicts: dict[str, str] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    overcount: float | None = None
    approx_error: dict[str, float] | None = None


def wait_child(cmd: Sequence[str], timeout: float, env: dict[str, str]) -> tuple[float, int, int, bool, str]:
    """Run ``cmd`` under ``launch.py``: (wall s, exit code or -signal, peak RSS KB, timed out, stderr end).

    The launcher, in a session of its own, reports the command's ``os.wait4`` usage (see its docstring
    for why a direct child's ``ru_maxrss`` would be wrong). It is waited for with ``waitid(WNOWAIT)``
    first, so that its process group cannot be recycled before a timeout kill of the whole group.
    """
    lock, state = threading.Lock(), {"done": False, "timed_out": False}
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as stderr:
        report = Path(folder) / "usage"
        launcher = [sys.executable, "-I", "-S", str(LAUNCH), str(report), *cmd]
        started = time.perf_counter()
        child = subprocess.Popen(
            launcher, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT, start_new_session=True
        )

        def kill() -> None:
            with lock:
                if not state["done"]:
                    state["timed_out"] = True
                    os.killpg(child.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - started
        with lock:
            state["done"] = True
        timer.cancel()
        os.killpg(child.pid, signal.SIGKILL)  # strays, if the launcher died first; it is still a zombie
        _, status, _ = os.wait4(child.pid, 0)
        child.returncode = code = os.waitstatus_to_exitcode(status)
        rss = 0
        if report.exists():
            fields = report.read_text(encoding="ascii").split()
            code, rss, wall = int(fields[0]), int(fields[1]), float(fields[2])
        stderr.seek(0)
        lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
    return wall, code, rss, bool(state["timed_out"]), lines[-1] if lines else ""


def scrub(text: str) -> str:
    """Reduce absolute paths in ``text`` to their last component (no machine paths in results)."""
    return re.sub(r"(?<![\w.])(?:/[\w.+-]+)+/([\w.+-]+)", r"\1", text)


def public_command(argv: Sequence[str]) -> str:
    """The command line for the results file, without the values of path options."""
    words, skip = ["python -m benchmarks.run"], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word in PATH_OPTIONS:
            skip = True
            continue
        if word.split("=", 1)[0] in PATH_OPTIONS:
            continue
        words.append(word)
    return " ".join(words)


def failure_reason(code: int, timed_out: bool, timeout: float, stderr_tail: str) -> str:
    """A short reason for a failed child."""
    if timed_out:
        return f"timeout after {timeout:g} s"
    if code == -signal.SIGKILL:
        return "killed by SIGKILL (out of memory?)"
    if code < 0:
        return f"killed by signal {-code}"
    if code == 3:
        return "MemoryError"
    return f"exit {code}: {scrub(stderr_tail)[-300:]}" if stderr_tail else f"exit {code}"


def measure(
    impl: str, repeat: int, path: str, freq: str, ratios: str, timeout: float, env: dict[str, str]
) -> Run:
    """Run ``impl`` once in a fresh child process and collect its output."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "output.json"
        cmd = [sys.executable, "-m", "benchmarks.worker", impl, path, freq, ratios, "--out", str(out)]
        wall, code, rss, timed_out, tail = wait_child(cmd, timeout, env)
        if code != 0 or timed_out:
            return Run(impl, repeat, False, wall, rss, reason=failure_reason(code, timed_out, timeout, tail))
        try:
            output = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return Run(impl, repeat, False, wall, rss, reason=f"unreadable output: {exc}")
    timing = output.pop("timing")
    return Run(impl, repeat, True, wall, rss, timing["run_s"], timing["import_s"], output=output)


def warm(path: str) -> None:
    """Read the file once so that every implementation starts with the same (warm) page cache."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def child_env(mem_limit: str | None) -> dict[str, str]:
    """The children's environment: the repo importable, and the DuckDB memory limit if given."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if mem_limit:
        env["XPYRMENT_MEMORY_LIMIT"] = mem_limit
    return env


def compare(size: Size) -> None:
    """Fill ``size``'s reference, verdicts, problems and notes from the successful runs' checksums."""
    first = {impl: next((r.output for r in runs if r.ok), None) for impl, runs in size.runs.items()}
    exact_ok = [impl for impl in EXACT if first.get(impl) is not None]
    if not exact_ok:
        size.verdicts = dict.fromkeys(size.runs, "n/a (no exact reference)")
        return
    size.reference = exact_ok[0]
    reference = first[size.reference]
    ref_sums = cs.checksums(reference)
    for impl, runs in size.runs.items():
        outputs = [r.output for r in runs if r.ok and r.output is not None]
        if not outputs:
            size.verdicts[impl] = "n/a (failed)"
            continue
        differing: dict[str, tuple[Any, Any]] = {}
        for output in outputs:
            differing.update(cs.mismatches(output, reference))
        if differing:
            size.verdicts[impl] = "NO: " + ", ".join(sorted(differing))
            size.problems.extend(f"{impl}: {k} = {a!r}, reference {b!r}" for k, (a, b) in differing.items())
            continue
        verdict = "ref" if impl == size.reference else "yes"
        if impl in SEED:
            anomaly = "anomaly" if ref_sums["empty_bins"] == 0 else "anomaly n/a: empty bins"
            verdict = f"yes (active on observed bins; {anomaly})"
            size.overcount = cs.overcount(outputs[0], reference)
            seed_sums = cs.checksums(outputs[0])
            seed_total, true_total = sum(seed_sums["cumulative_last"]), sum(ref_sums["cumulative_last"])
            size.notes.append(
                "pandas_seed cumulative counts each unit once per bin it appears in: its last cumulative "
                f"row sums to {seed_total:,} against {true_total:,} distinct units "
                f"({size.overcount:+.1%}). On its daily cumulative the seed's chi-square "
                f"p = {seed_sums['chi_p']} (exact: {ref_sums['chi_p']}); its SPRT over rows stopped at row "
                f"{seed_sums['stopped_index']} (exact, over units: {ref_sums['stopped_index']})."
            )
        if impl in APPROX:
            size.approx_error = cs.relative_error(outputs[0], reference)
            error = size.approx_error
            detail = "grid differs" if error is None else f"mean {error['mean']:.2%}, max {error['max']:.2%}"
            verdict = f"yes (exact parts; active rel. error {detail})"
        size.verdicts[impl] = verdict


def run_size(rows: int, impls: Sequence[str], args: argparse.Namespace, failed: dict[str, str]) -> Size:
    """Generate (if needed), warm, and run every implementation ``args.repeats`` times at ``rows``."""
    path = ensure_log(
        rows,
        days=args.days,
        arms=args.arms,
        srm=args.srm,
        seed=args.seed,
        rows_per_unit=args.rows_per_unit,
        drop=args.drop,
        data_dir=args.data_dir,
    )
    warm(path)
    size = Size(rows, path, os.path.getsize(path), {impl: [] for impl in impls}, {})
    env = child_env(args.mem_limit)
    for impl in impls:
        if impl in failed:
            size.skipped[impl] = failed[impl]
    for repeat in range(args.repeats):
        order = list(impls[repeat % len(impls) :]) + list(impls[: repeat % len(impls)])
        for impl in order:
            if impl in size.skipped or any(not r.ok for r in size.runs[impl]):
                continue
            result = measure(impl, repeat, path, args.freq, args.ratios, args.timeout, env)
            size.runs[impl].append(result)
            status = f"{result.run_s:.2f} s" if result.ok else f"FAILED ({result.reason})"
            print(
                f"[{rows_label(rows)}] {impl} #{repeat + 1}: {status}, {result.max_rss_kb / 1024:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            if not result.ok:
                failed[impl] = f"failed at {rows_label(rows)}: {result.reason}"
    compare(size)
    return size


def machine() -> dict[str, str]:
    """CPU, cores, RAM, OS, Python and library versions, and the library's git commit."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": str(os.cpu_count())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        info["cpu"] = next(
            ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        kb = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        info["ram"] = f"{int(kb.split()[1]) / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        info["ram"] = "unknown"
    os_name = platform.system()
    try:
        release = dict(
            ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln
        )
        os_name = release.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    info["os"] = f"{os_name} (kernel {platform.release()})"
    info["python"] = platform.python_version()
    for package in VERSIONS:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    info["commit"] = _commit()
    return info


def _commit() -> str:
    """Short git commit of the repo, marked when the working tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _megabytes(kb: float) -> str:
    """KiB (what ``ru_maxrss`` counts) as MiB or GiB for the table."""
    return f"{kb / 1024**2:.2f} GiB" if kb >= 1024**2 else f"{kb / 1024:.0f} MiB"


def table(size: Size) -> list[str]:
    """The markdown table of one size."""
    lines = [
        f"| implementation | median s | runs | peak RSS | {TIMES} vs xpyrment | process s | checksum ok |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    medians = {
        impl: statistics.median(r.run_s for r in runs if r.ok and r.run_s is not None)
        for impl, runs in size.runs.items()
        if any(r.ok for r in runs)
    }
    base = medians.get("xpyrment")
    for impl, runs in size.runs.items():
        ok = [r for r in runs if r.ok]
        if impl in size.skipped:
            lines.append(f"| {impl} | fails | skipped ({size.skipped[impl]}) | | | | |")
            continue
        if not ok:
            reason = next((r.reason for r in runs if not r.ok), "not run")
            peak = max((r.max_rss_kb for r in runs), default=0)
            rss = _megabytes(peak) if peak else "n/a"
            lines.append(f"| {impl} | fails | 0/{len(runs)}: {reason} | {rss} | | | |")
            continue
        ratio = f"{medians[impl] / base:.2f}{TIMES}" if base else "n/a"
        failure = next((f" ({r.reason})" for r in runs if not r.ok), "")
        lines.append(
            f"| {impl} | {medians[impl]:.2f} | {len(ok)}/{len(runs)}{failure} | "
            f"{_megabytes(max(r.max_rss_kb for r in ok))} | {ratio} | "
            f"{statistics.median(r.wall_s for r in ok):.2f} | {size.verdicts.get(impl, 'n/a')} |"
        )
    return lines


def markdown(sizes: Sequence[Size], info: dict[str, str], args: argparse.Namespace, command: str) -> str:
    """The whole RESULTS.md."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{p} {info[p]}" for p in VERSIONS)
    out = [
        "# Benchmark results",
        "",
        f"Generated {now} by `{command}`.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} logical cores",
        f"- RAM: {info['ram']}",
        f"- OS: {info['os']}",
        f"- Python {info['python']}; {versions}",
        f"- xpyrment_sql commit: {info['commit']}",
        "",
        "## Method",
        "",
        "- Logs from `xpyrment_sql.synthetic.write_exposure_log` (`benchmarks/generate.py`): "
        f"{args.days:g} days, "
        f"arms `{args.arms}`, SRM `{args.srm}` (arm:keep:after-fraction), "
        + (f"outage `{args.drop}` (keep:after-fraction), " if args.drop else "")
        + f"{args.rows_per_unit:g} rows per "
        f"unit on average (units return), seed {args.seed}; ZSTD Parquet, time-ordered.",
        f"- Task: `run_telemetry_checks(expected_ratios=[{args.ratios}], freq={args.freq!r})` — binned "
        "active units, cumulative first exposures, z-score traffic-drop test, chi-square SRM and the seed's "
        "two-arm SPRT over units in order of first exposure. xpyrment is asked for the seed's SPRT "
        "(`sequential_method='sprt'`) without the multiple-exposure query, so every implementation does "
        "the same work.",
        f"- Every implementation runs in its own child process, {args.repeats} time(s), order rotated "
        "between repeats, after one read of the file to warm the page cache. "
        f"Timeout {args.timeout:g} s; DuckDB memory limit {args.mem_limit or 'default'} "
        "(xpyrment, xpyrment_approx, duckdb_sql).",
        "- **median s**: median of `run()` timed inside the child (reading the log, aggregating, "
        "statistics). **process s**: median wall time of the whole child, with interpreter start-up and "
        "imports. **peak RSS**: largest `ru_maxrss` of the child over its runs (`os.wait4`). "
        f"**{TIMES} vs xpyrment**: median s / xpyrment's median s in the same run (above 1 = slower).",
        "- **checksum ok**: exact implementations must match the reference on every checksum (matrix "
        "shape, total and sha256 of the active and cumulative matrices, z-score to 1e-9, chi-square p and "
        "last-bin LR to 9 significant digits, SPRT stopped index). pandas_seed is compared on the active "
        "matrix of the bins it shows and the anomaly test only; xpyrment_approx on cumulative traffic and "
        "the SRM tests only.",
        "",
    ]
    for size in sizes:
        out += [
            f"## {rows_label(size.rows)} rows",
            "",
            f"Log `{Path(size.path).name}`: {size.file_bytes / 1024**2:,.1f} MiB on disk"
            + (f"; reference for checksums: {size.reference}." if size.reference else "."),
            "",
            *table(size),
            "",
        ]
        notes = list(size.notes) + [f"Checksum mismatch — {p}" for p in size.problems]
        out += [f"- {n}" for n in notes] + ([""] if notes else [])
    out += [
        "## Notes",
        "",
        "- pandas_seed is the seed's code as written: `pd.read_parquet` of the whole log, two frame copies "
        "and groupbys (anomaly at `freq`, chi-square on its default daily cumulative), and a full sort for "
        "an SPRT over rows. Its cumulative traffic sums per-bin active units, so returning units are "
        "counted again in every bin: the chi-square and SPRT then test inflated or different samples.",
        "- The seed's matrix omits bins without traffic; exact implementations show them as zeros.",
        "",
    ]
    return "\n".join(out)


def to_json(sizes: Sequence[Size], info: dict[str, str]) -> dict[str, Any]:
    """Raw results (without the outputs' matrices) for later analysis."""
    return {
        "machine": info,
        "sizes": [
            {
                "rows": s.rows,
                "file": Path(s.path).name,
                "file_bytes": s.file_bytes,
                "reference": s.reference,
                "verdicts": s.verdicts,
                "problems": s.problems,
                "skipped": s.skipped,
                "overcount": s.overcount,
                "approx_error": s.approx_error,
                "runs": {
                    impl: [
                        dataclasses.asdict(r)
                        | {"output": None, "checksums": cs.checksums(r.output) if r.output else None}
                        for r in runs
                    ]
                    for impl, runs in s.runs.items()
                },
            }
            for s in sizes
        ],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1e6,1e7,1e8", help="comma-separated log sizes")
    parser.add_argument("--impls", default=DEFAULT_IMPLS, help=f"comma-separated, from {', '.join(ALL)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--freq", default="h")
    parser.add_argument("--ratios", default="1,1", help="expected ratios, sorted-variant order")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child")
    parser.add_argument("--mem-limit", help="DuckDB memory_limit for xpyrment and duckdb_sql, e.g. 8GB")
    parser.add_argument("--approx", action="store_true", help="also run xpyrment_approx (exact=False)")
    parser.add_argument("--smoke", action="store_true", help="100k rows, 1 repeat, assert agreement")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        help="write the results files (default: yes, except with --smoke)",
    )
    parser.add_argument("--results", default=str(RESULTS), help="markdown output (JSON next to it)")
    parser.add_argument("--json", help="also write the raw results JSON here")
    parser.add_argument("--data-dir", help="where logs are generated (default benchmarks/data)")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--arms", default=DEFAULT_ARMS)
    parser.add_argument("--srm", default=DEFAULT_SRM, help="ARM:KEEP:AFTER or none")
    parser.add_argument("--drop", help="KEEP:AFTER outage of all rows (default none)")
    parser.add_argument("--rows-per-unit", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.repeats = str(SMOKE_ROWS), 1
    if args.write is None:
        args.write = not args.smoke
    parse_ratios(args.ratios)
    return args


def benchmark(args: argparse.Namespace, command: str = "python -m benchmarks.run") -> list[Size]:
    """Run every size; rewrite the results after each one when writing (partial runs survive)."""
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    if args.approx and "xpyrment_approx" not in impls:
        impls.append("xpyrment_approx")
    unknown = sorted(set(impls) - set(ALL))
    if unknown:
        raise SystemExit(f"unknown implementation(s) {unknown}; choose from {list(ALL)}")
    info = machine()
    sizes: list[Size] = []
    failed: dict[str, str] = {}
    for rows in (parse_rows(r) for r in args.rows.split(",") if r.strip()):
        sizes.append(run_size(rows, impls, args, failed))
        if args.write:
            Path(args.results).write_text(markdown(sizes, info, args, command), encoding="utf-8")
            Path(args.results).with_suffix(".json").write_text(json.dumps(to_json(sizes, info), indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(to_json(sizes, info), indent=1), encoding="utf-8")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; with ``--smoke`` exit 1 unless every implementation ran and agreed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    sizes = benchmark(args, public_command(argv))
    for size in sizes:
        print("\n".join([f"\n{rows_label(size.rows)} rows", *table(size), *size.notes]))
    if args.smoke:
        problems = [p for s in sizes for p in s.problems]
        problems += [
            f"{impl}: {r.reason}" for s in sizes for impl, runs in s.runs.items() for r in runs if not r.ok
        ]
        if problems:
            print("SMOKE FAILED:\n" + "\n".join(problems), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
