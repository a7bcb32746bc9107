"""The benchmark suite's smoke run: every implementation, each in its own process, must agree.

Exact implementations (xpyrment, hand-written DuckDB SQL, Polars) must match on every checksum;
the seed's pandas code only on what it defines the same way (the binned active matrix on the bins it
shows, and the anomaly test), and it must overcount units on a log where units return.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.baselines import EXACT, SEED


def _bench(tmp_path: Path, *extra: str) -> run.Size:
    args = run.parse_args(
        ["--data-dir", str(tmp_path), "--repeats", "1", "--timeout", "120", "--no-write", *extra]
    )
    (size,) = run.benchmark(args)
    return size


def _assert_all_agree(size: run.Size) -> None:
    failures = {impl: r.reason for impl, runs in size.runs.items() for r in runs if not r.ok}
    assert not failures
    assert not size.problems
    assert size.reference == "xpyrment"
    for impl in size.runs:
        assert size.verdicts[impl] == "ref" or size.verdicts[impl].startswith("yes"), size.verdicts


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> run.Size:
    """The ``--smoke`` benchmark: 100k rows, one run of each of the four implementations."""
    return _bench(tmp_path_factory.mktemp("smoke"), "--smoke")


def test_smoke_runs_all_four_implementations(smoke):
    assert list(smoke.runs) == [*EXACT, *SEED]
    assert all(len(runs) == 1 for runs in smoke.runs.values())
    assert all(r.max_rss_kb > 0 and r.run_s is not None for runs in smoke.runs.values() for r in runs)


def test_smoke_checksums_agree(smoke):
    _assert_all_agree(smoke)


def test_smoke_exercises_the_sprt_crossing(smoke):
    # The default planted SRM is strong enough for the SPRT to stop, so the first-crossing search of
    # every exact implementation is compared, not just "never stopped".
    reference = smoke.runs["xpyrment"][0].output
    assert reference["sprt"]["stopped_index"] >= 0


def test_seed_overcounts_returning_units(smoke):
    assert smoke.overcount is not None
    assert smoke.overcount > 0
    seed = smoke.runs["pandas_seed"][0].output
    assert seed["semantics"]["cumulative"] == "seed"


def test_empty_bins_are_filled_and_the_seed_is_compared_on_observed_bins(tmp_path):
    # An outage keeping 0.2% of rows leaves hours without traffic inside the span: exact
    # implementations show them as zero rows, the seed's pivot drops them.
    size = _bench(tmp_path, "--rows", "3e4", "--srm", "none", "--drop", "0.002:0.6")
    _assert_all_agree(size)
    exact = size.runs["xpyrment"][0].output
    seed = size.runs["pandas_seed"][0].output
    assert len(seed["bins"]) < len(exact["bins"])
    assert "anomaly n/a" in size.verdicts["pandas_seed"]


def test_overhead_table_counts_the_statements_of_each_method(tmp_path):
    from benchmarks import overhead

    out = tmp_path / "OVERHEAD.md"
    assert overhead.main(["--rows", "2000", "--repeats", "1", "--out", str(out)]) == 0
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| 2,000")]
    by_method = {cells[1].strip(): cells for cells in rows}
    # Either method sends one statement: the traffic matrix carries multiple exposure and, for the
    # seed's SPRT, the running window its crossings are read from.
    assert set(by_method) == {"anytime", "sprt"}
    assert [int(cells[2]) for cells in rows] == [1, 1]
    assert all(float(cells[4]) > 0 for cells in rows)


def test_incremental_benchmark_checks_every_run_against_the_full_run(tmp_path):
    """A small invocation of ``benchmarks.incremental``: the floor, the first run with state and the
    next hour must each agree with the full run (the script raises otherwise), and the tables list
    every measured run; a second invocation keeps the first one's size."""
    from benchmarks import incremental

    paths = ["--data", str(tmp_path), "--results", str(tmp_path / "R.md"), "--raw", str(tmp_path / "R.json")]
    incremental.main(["--rows", "2e4", "--repeats", "1", *paths])
    incremental.main(["--rows", "3e4", "--repeats", "1", "--pandas-up-to", "1", *paths])
    text = (tmp_path / "R.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 20k") or line.startswith("| 30k")]
    assert len(rows) == 3, "two sizes in the main table, one (20k) in the whole-process table"
    assert "not run" not in rows[0]
    assert (tmp_path / "incremental-20k" / "log" / "part-1.parquet").exists(), "the log is kept for reuse"


def test_fleet_benchmark_checks_check_all_against_the_loop(tmp_path):
    """A small invocation of ``benchmarks.fleet``: check_all's units per experiment must equal the
    loop of 50 monitors' (the script raises otherwise); the table has the three timings."""
    from benchmarks import fleet

    results = tmp_path / "F.md"
    fleet.main(["--rows", "2e4", "--repeats", "1", "--data", str(tmp_path), "--results", str(results)])
    (row,) = [line for line in results.read_text().splitlines() if line.startswith("| 20k")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 7
    assert all(cell.endswith(("s", "x", "GiB")) for cell in cells[1:]), cells
    assert (tmp_path / "fleet-20k.parquet").exists(), "the table is kept for reuse"
