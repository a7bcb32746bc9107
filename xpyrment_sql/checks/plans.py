"""The queries each check sends, by name: the plan ``xpyrment-sql sql`` prints for any dialect.

Every entry is built by the same function the check runs (``checks.traffic.matrix_query``,
``queries.multiple_exposure_counts``, ...), so the printed SQL is the SQL that runs; only the
compilation to a dialect happens in :mod:`xpyrment_sql.queries.sql`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.bins import parse_freq
from xpyrment_sql.checks.incremental import probe_query
from xpyrment_sql.checks.srm import SPRT_DELTA, sprt_query, sprt_shares_for_ratios
from xpyrment_sql.checks.traffic import matrix_query
from xpyrment_sql.queries.fleet import fleet_counts, fleet_moments
from xpyrment_sql.queries.moments import MomentSpec, variant_moments
from xpyrment_sql.queries.sql import compile_plan
from xpyrment_sql.settings import Ratios, check_ratio_values
from xpyrment_sql.source import Source

PROBE_SINCE = pd.Timestamp("2026-01-05 00:00", tz="UTC")
"""The window start the printed incremental probe uses (a run takes it from its state file), and
the start of the printed fleet query's configured experiment."""

FLEET_EXAMPLE = "checkout-redesign"
"""The configured experiment of the printed fleet query (a run takes them from its config file)."""


def check_queries(
    source: Source,
    dialect: str,
    freq: str = "D",
    expected_ratios: Ratios = (1, 1),
    segment_cols: Sequence[str] | None = None,
    metric_cols: Sequence[str] | None = None,
    tz: str | None = None,
    experiment_col: str | None = None,
) -> dict[str, str]:
    """Every query the checks can send for ``source``, as SQL text headed by the check it serves.

    Args:
        source: The table (bound or not: nothing is executed).
        dialect: Any SQL dialect Ibis compiles to (``duckdb``, ``postgres``, ``bigquery``, ...).
        freq: Bin size of the traffic matrix.
        expected_ratios: Designed split; with two arms its shares are the SPRT's candidate ``p0``
            values (an even split needs one crossing column, an uneven one two).
        segment_cols: Columns for the ``check_srm_by`` query; default the example's ``platform``
            when the source has it.
        metric_cols: Columns for the metrics query (one mean metric each); default the example's
            ``load_ms`` when the source has it.
        tz: Time zone whose local midnight starts day and week bins, as ``LiveMonitor(tz=...)``.
        experiment_col: Column naming each row's experiment, for ``check_all``'s query; default the
            example's ``experiment`` when the source has it.

    Raises:
        ParameterError: an unknown dialect or bad ratios.
    """
    variant = source.variant_col
    bins = parse_freq(freq, tz)
    check_ratio_values(expected_ratios)
    shares = sprt_shares_for_ratios(expected_ratios) or (0.5,)
    if segment_cols is None:
        segment_cols = ["platform"] if "platform" in source.schema else []
    if metric_cols is None:
        metric_cols = ["load_ms"] if "load_ms" in source.schema else []
    if experiment_col is None and "experiment" in source.schema:
        experiment_col = "experiment"
    plan = {
        "traffic_matrix": (
            "traffic matrix: active and first-exposure units per bin and variant, with the "
            "multiple-exposure events per bin (run_telemetry_checks: traffic anomaly, chi-square, "
            "anytime-valid SRM, MULTIPLE_EXPOSURE)",
            matrix_query(source, variant, bins, None, exposure=True),
        ),
        "incremental_probe": (
            f"a later run with state= on a warehouse: the bins from the window start ({PROBE_SINCE}) "
            "on, new units decided against the earlier rows of the same table; counts only",
            probe_query(source, variant, bins, None, PROBE_SINCE),
        ),
        "multiple_exposure": (
            "units seen under more than one variant (check_multiple_exposure on its own)",
            queries.multiple_exposure_counts(source, variant),
        ),
        "units_per_variant": (
            "distinct units per variant (check_live_srm on its own)",
            queries.units_per_variant(source, variant),
        ),
        "traffic_matrix_sprt": (
            "traffic matrix with the two-arm SPRT's first crossing (sequential_method='sprt', "
            "check_sequential_srm)",
            matrix_query(source, variant, bins, None, sprt=sprt_query(shares, SPRT_DELTA, 0.01)),
        ),
    }
    if segment_cols:
        plan["srm_by_segment"] = (
            "distinct units per segment and variant, and per variant overall (check_srm_by)",
            queries.segment_units(source, variant, list(segment_cols)),
        )
    if metric_cols:
        plan["metric_moments"] = (
            "per-variant moments of every metric (calculate_metrics, guardrails)",
            variant_moments(source, variant, [MomentSpec(column) for column in metric_cols], source.unit_col),
        )
    if experiment_col:
        plan["fleet_traffic_matrix"] = (
            f"every experiment at once (check_all): the traffic matrix and multiple exposure grouped "
            f"by {experiment_col}, for a configured experiment {FLEET_EXAMPLE!r} from {PROBE_SINCE} on and "
            "every experiment the config does not list",
            fleet_counts(
                source,
                variant,
                experiment_col,
                bins,
                None,
                {FLEET_EXAMPLE: (PROBE_SINCE, None)},
                others=[FLEET_EXAMPLE],
            ),
        )
    if experiment_col and metric_cols:
        plan["fleet_metric_moments"] = (
            f"every guarded experiment at once (check_all with guardrails): per-variant moments of "
            f"every metric grouped by {experiment_col}, for the same experiments",
            fleet_moments(
                source,
                variant,
                experiment_col,
                [MomentSpec(column) for column in metric_cols],
                None,
                {FLEET_EXAMPLE: (PROBE_SINCE, None)},
                others=[FLEET_EXAMPLE],
            ),
        )
    return compile_plan(plan, dialect)
