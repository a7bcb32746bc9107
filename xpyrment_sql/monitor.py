"""LiveMonitor: the seed's monitoring API, with every row-level reduction pushed into the backend.

The monitor is the only place where queries (``queries.py``) and statistics (``stats/``) meet: it
sends a query, receives a small matrix, hands it to a pure function and dispatches alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.bins import BinSpec, as_utc, check_tz, parse_freq, time_chunks
from xpyrment_sql.checks import assignment
from xpyrment_sql.checks.drops import judge_traffic_drop
from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.metrics import Metric, calculate_metrics
from xpyrment_sql.checks.traffic import MAX_MATRIX_CELLS, traffic_matrix
from xpyrment_sql.errors import DataError, ParameterError
from xpyrment_sql.reporting import charts
from xpyrment_sql.results import (
    AnytimeSRMResult,
    DispatchOutcome,
    LiveSRMResult,
    MultipleExposureResult,
    SegmentSRMResult,
    SequentialSRMResult,
    TelemetryReport,
    TrafficAnomalyResult,
    TrafficMatrix,
)
from xpyrment_sql.results.metrics import GuardrailReport, MetricsReport
from xpyrment_sql.source import EngineSettings, Source, open_source
from xpyrment_sql.stats import anomaly as drop_tests
from xpyrment_sql.stats.anomaly import check_anomaly_parameters
from xpyrment_sql.stats.segment_srm import check_min_expected_units
from xpyrment_sql.stats.srm import (
    DEFAULT_CONCENTRATION,
    check_alpha,
    check_concentration,
    check_gates,
    check_sprt_parameters,
    chi_square_srm,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Ratios = assignment.Ratios


class LiveMonitor:
    """Watches a running experiment's exposure log: traffic, sample ratio mismatch, alerts.

    Args:
        data: A Parquet/CSV path or glob, a pandas/polars DataFrame, a pyarrow Table, an Ibis table,
            or a connection URL (then ``table=`` names the table).
        time_col: Column of exposure timestamps (TIMESTAMP, TIMESTAMPTZ, DATE or parseable strings).
        dispatcher: Where alerts from :meth:`run_telemetry_checks` go.
        unit_col: Randomisation unit column; default ``unit_id`` if present, else the first column that
            is neither the time nor the variant column (``source.unit_rule`` says which rule chose it).
        variant_col: Variant column used when a method is not given one.
        table: Table name for a connection URL (``schema.table`` accepted).
        until: The evaluation instant: a timestamp (naive means UTC) or ``"now"`` (read afresh at
            every check, for a monitor that runs from cron). Rows at or after it are ignored, and every
            bin up to the one holding it is shown, so an outage still going on appears as zero bins.
            The bin holding ``until`` is unfinished (shown, never judged as a drop); a bin starting
            exactly at ``until`` does not exist yet. Without ``until`` the evaluation instant is the
            latest exposure, so the last bin is unfinished.
        tz: IANA zone whose local midnight starts day and week bins; labels are shown in it.
        time_unit: Unit of an integer or float epoch time column: ``"s"``, ``"ms"``, ``"us"`` or
            ``"ns"`` (required for such a column; converted in SQL).
        exact: ``False`` counts active units per bin with the backend's HyperLogLog
            (``approx_count_distinct``): much faster and lighter on huge logs, a few percent off per
            cell. First exposures, cumulative traffic and every SRM test stay exact.
        memory_limit: Memory budget of the embedded engine (e.g. ``"8GB"``): DuckDB's own
            ``memory_limit`` is set 15% (at least 384 MiB) below it, room for what DuckDB does not
            count and for Python itself; larger intermediate results spill to ``temp_directory``.
        threads: DuckDB ``threads`` for the embedded engine.
        temp_directory: Where the embedded DuckDB spills (default: a private temporary folder).
        progress: Show DuckDB's progress bar on stderr for queries longer than two seconds.

    Attributes:
        shutoff_triggered: Sticky flag, set once an SRM check fires in :meth:`run_telemetry_checks`.
    """

    def __init__(
        self,
        data: Any,
        time_col: str,
        dispatcher: WebhookAlertDispatcher | None = None,
        *,
        unit_col: str | None = None,
        variant_col: str = "variant",
        table: str | None = None,
        until: Any = None,
        tz: str | None = None,
        time_unit: str | None = None,
        exact: bool = True,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: str | None = None,
        progress: bool = False,
    ) -> None:
        self.source: Source = open_source(
            data,
            time_col=time_col,
            unit_col=unit_col,
            variant_col=variant_col,
            table=table,
            time_unit=time_unit,
            engine=EngineSettings(memory_limit, threads, temp_directory, progress),
        )
        self.exact = bool(exact)
        self.dispatcher = dispatcher
        self.tz = check_tz(tz)
        self._until = _parse_until(until)
        self.shutoff_triggered = False

    @property
    def until(self) -> pd.Timestamp | None:
        """The evaluation instant (aware UTC), ``None`` for the latest exposure; ``"now"`` is read afresh."""
        if isinstance(self._until, str):
            return pd.Timestamp.now(tz="UTC")
        return self._until

    @property
    def time_col(self) -> str:
        """The exposure timestamp column."""
        return self.source.time_col

    @property
    def unit_col(self) -> str:
        """The randomisation unit column."""
        return self.source.unit_col

    def traffic_matrix(self, variant_col: str | None = None, freq: str = "D") -> TrafficMatrix:
        """Active and first-exposure distinct units per bin and variant, in one query."""
        bins = parse_freq(freq, self.tz)
        return self._traffic(self._variant(variant_col), bins, self.until)

    def get_binned_traffic(
        self, variant_col: str | None = None, freq: str = "D", count: str = "active"
    ) -> pd.DataFrame:
        """Distinct units per bin (rows) and variant (columns, sorted).

        ``count="active"`` counts every unit seen in the bin; ``count="new"`` counts a unit only in the
        bin of its first exposure. Every bin from the first observed (to ``until`` if set) is present.
        """
        if count not in ("active", "new"):
            raise ParameterError(f"count={count!r} must be 'active' or 'new'")
        return self.traffic_matrix(variant_col, freq).binned(count)

    def get_cumulative_traffic(self, variant_col: str | None = None, freq: str = "D") -> pd.DataFrame:
        """Cumulative distinct units ``C_v(t) = sum_{tau <= t} n_v(tau)``, ``n_v`` = first exposures.

        Each unit counts once, in the bin of its first exposure, so the last row equals
        ``COUNT(DISTINCT unit)`` per variant.
        """
        return self.traffic_matrix(variant_col, freq).cumulative()

    def check_traffic_anomaly(
        self,
        variant_col: str | None = None,
        freq: str = "D",
        window: int = 7,
        z_threshold: float | None = None,
        drop_threshold: float = 0.5,
        method: str = "seasonal",
    ) -> TrafficAnomalyResult:
        """Is the latest *complete* bin's total of units a drop? (one query: the traffic matrix).

        The seed's keys keep their meaning; ``judged_bin`` says which bin was judged and
        ``unfinished_bin`` which one was left alone for being in progress at the evaluation instant.

        Args:
            variant_col: Variant column (default: the monitor's).
            freq: Bin size.
            window: Bins in the z-score test's baseline (``method="zscore"``, and the seasonal test's
                fallback when there is less than one cycle of history).
            z_threshold: A z-score below ``-z_threshold`` is a drop; ``None`` for the method's
                calibrated default (see ``CALIBRATION.md``).
            drop_threshold: Relative drop flagged when the z-score baseline has no variance.
            method: ``"seasonal"`` (the same bin in earlier days or weeks, scaled to the current level;
                the default) or ``"zscore"`` (the seed's test against the preceding ``window`` bins).
        """
        drop_tests.check_drop_method(method)
        check_anomaly_parameters(window, z_threshold, drop_threshold)
        matrix = self.traffic_matrix(variant_col, freq)
        return judge_traffic_drop(matrix, method, window, z_threshold, drop_threshold)

    def check_live_srm(
        self,
        expected_ratios: Ratios,
        variant_col: str | None = None,
        alpha: float = 0.001,
        min_units: int = 0,
        min_deviation: float = 0.0,
    ) -> LiveSRMResult:
        """Chi-square SRM test on distinct units per variant (one ``COUNT(DISTINCT)`` query).

        Args:
            expected_ratios: Designed ratios, a list aligned with the sorted variant names or a dict
                ``{variant: ratio}``.
            variant_col: Variant column (default: the monitor's).
            alpha: Significance level; ``srm_detected`` is ``p_value < alpha``.
            min_units: No verdict (and a message saying so) while a variant has fewer units.
            min_deviation: An SRM counts only when some variant's observed share is off its expected
                share by more than this (absolute, e.g. ``0.005`` for half a point).
        """
        check_alpha(alpha)
        check_gates(min_units, min_deviation)
        assignment.check_ratio_values(expected_ratios)
        column = self._variant(variant_col)
        units = self.source.execute(
            queries.units_per_variant(self.source, column, self.until), "the distinct units per variant"
        )
        units = units.sort_values("variant")
        return chi_square_srm(
            units["units"].to_numpy(),
            expected_ratios,
            tuple(units["variant"].tolist()),
            alpha,
            min_units,
            min_deviation,
        )

    def check_anytime_srm(
        self,
        expected_ratios: Ratios,
        variant_col: str | None = None,
        freq: str = "D",
        alpha: float = 0.01,
        concentration: float = DEFAULT_CONCENTRATION,
        min_units: int = 0,
        min_deviation: float = 0.0,
    ) -> AnytimeSRMResult:
        """Anytime-valid SRM test for any number of arms (Dirichlet-multinomial mixture; one query).

        Valid however often it is re-run: the p-value after each ``freq`` bin is
        ``min(1, min_{s <= t} 1 / BF_s)``, computed from the cumulative units per variant alone
        (see :func:`xpyrment_sql.stats.srm.anytime_log_bayes_factors`).

        Args:
            expected_ratios: Designed ratios (list aligned with sorted variant names, or dict).
            variant_col: Variant column (default: the monitor's).
            freq: Bin size; the test looks at the end of every bin.
            alpha: Level; the test stops at the first bin whose p-value is at most ``alpha``.
            concentration: Total weight of the Dirichlet prior around the designed shares.
            min_units: No verdict while a variant has fewer units.
            min_deviation: An SRM counts only when some share is off by more than this (absolute).
        """
        check_alpha(alpha)
        check_concentration(concentration)
        check_gates(min_units, min_deviation)
        assignment.check_ratio_values(expected_ratios)
        matrix = self.traffic_matrix(variant_col, freq)
        return assignment.anytime(matrix, expected_ratios, alpha, concentration, min_units, min_deviation)

    def check_sequential_srm(
        self,
        variant_col: str | None = None,
        target_treatment_ratio: float = 0.5,
        delta: float = 0.02,
        alpha: float = 0.01,
        freq: str = "D",
    ) -> SequentialSRMResult:
        """Two-arm mixture SPRT over units in order of first exposure (one query).

        The exact stopping position is found in the backend, in the traffic matrix query (running
        counts in window functions over the first exposures); ``running_likelihood_ratios`` is the LR
        at the end of each ``freq`` bin.
        """
        check_sprt_parameters(target_treatment_ratio, delta, alpha)
        shares = assignment.sprt_candidate_shares(target_treatment_ratio)
        matrix, crossings = self._traffic_and_sprt(
            self._variant(variant_col), parse_freq(freq, self.tz), self.until, shares, delta, alpha
        )
        return assignment.sprt(matrix, crossings, target_treatment_ratio, delta, alpha)

    def check_multiple_exposure(
        self, variant_col: str | None = None, max_share: float = 0.01
    ) -> MultipleExposureResult:
        """Units seen under more than one variant, in total and per pair of variants (one query).

        ``multiple_exposure_detected`` is ``share > max_share``. Such units still count once in each
        of their variants in the traffic and SRM checks (see :mod:`xpyrment_sql.checks.assignment`).
        """
        max_share = assignment.check_max_share(max_share)
        return assignment.multiple_exposure(self.source, self._variant(variant_col), self.until, max_share)

    def check_srm_by(
        self,
        dimension_cols: str | Sequence[str],
        expected_ratios: Ratios,
        variant_col: str | None = None,
        alpha: float = 0.001,
        min_expected_units: float = 10.0,
    ) -> SegmentSRMResult:
        """Chi-square SRM per segment, Bonferroni-corrected, ranked by chi-square share (one query).

        The overall test counts distinct units per variant (equal to :meth:`check_live_srm`); a segment
        column the variant decides (each segment holds one arm) is reported as post-assignment and not
        tested. See :func:`xpyrment_sql.checks.assignment.srm_by_segment`.

        Args:
            dimension_cols: Column(s) whose value combinations are the segments (low cardinality:
                one row per segment and variant comes back).
            expected_ratios: Designed ratios (list aligned with sorted variant names, or dict).
            variant_col: Variant column (default: the monitor's).
            alpha: Family-wise level across the segments tested.
            min_expected_units: Segments where an arm expects fewer units are pooled into
                ``"(other)"``; the pool is skipped if it is still too small.
        """
        check_alpha(alpha)
        check_min_expected_units(min_expected_units)
        assignment.check_ratio_values(expected_ratios)
        column = self._variant(variant_col)
        dimensions = assignment.check_dimension_cols(self.source, dimension_cols, column)
        return assignment.srm_by_segment(
            self.source, column, dimensions, self.until, expected_ratios, alpha, min_expected_units
        )

    def run_telemetry_checks(
        self,
        expected_ratios: Ratios,
        variant_col: str | None = None,
        freq: str = "D",
        window: int = 7,
        z_threshold: float | None = None,
        srm_alpha: float = 0.001,
        sequential_alpha: float = 0.01,
        sequential_method: str = "anytime",
        concentration: float = DEFAULT_CONCENTRATION,
        min_units: int = 0,
        min_deviation: float = 0.0,
        max_multiple_exposure_share: float | None = 0.01,
        guardrails: Sequence[GuardrailMetric] = (),
        drop_method: str = "seasonal",
    ) -> TelemetryReport:
        """Traffic anomaly, chi-square SRM, sequential SRM and multiple exposure, with alerts dispatched.

        The sequential check is the anytime-valid test (any number of arms, computed from the traffic
        matrix) or, with ``sequential_method="sprt"``, the seed's two-arm SPRT, which ignores
        ``min_units`` and ``min_deviation``. At most three queries reach the backend: the traffic
        matrix (which, for the SPRT, also finds its first crossing), the multiple-exposure counts
        (skipped with ``max_multiple_exposure_share=None``) and the guardrails. An SRM from either
        test sets the sticky ``shutoff_triggered`` flag; multiple exposure alerts without it.
        ``guardrails`` adds one query (all guarded metrics at once) and a ``GUARDRAIL_BREACH`` alert per
        breached guardrail and treatment arm; only guardrails built with ``shutoff=True`` set
        ``shutoff_triggered``. The drop test judges the latest complete bin with ``drop_method``
        (see :meth:`check_traffic_anomaly`; ``z_threshold=None`` is that method's default). Every
        check is evaluated at one instant, ``until`` as it stood when the run started.
        """
        drop_tests.check_drop_method(drop_method)
        check_anomaly_parameters(window, z_threshold, 0.5)
        check_alpha(srm_alpha, "srm_alpha")
        check_alpha(sequential_alpha, "sequential_alpha")
        assignment.check_sequential_method(sequential_method)
        check_concentration(concentration)
        check_gates(min_units, min_deviation)
        if max_multiple_exposure_share is not None:
            assignment.check_max_share(max_multiple_exposure_share, "max_multiple_exposure_share")
        assignment.check_ratio_values(expected_ratios)
        column = self._variant(variant_col)
        until = self.until
        guarded = self._guardrails(guardrails, column, until) if guardrails else None
        bins = parse_freq(freq, self.tz)
        if sequential_method == "sprt":
            shares = assignment.sprt_shares_for_ratios(expected_ratios)
            matrix, crossings = self._traffic_and_sprt(
                column, bins, until, shares, assignment.SPRT_DELTA, sequential_alpha
            )
        else:
            matrix = self._traffic(column, bins, until)
        anomaly = judge_traffic_drop(matrix, drop_method, window, z_threshold, 0.5)
        live = chi_square_srm(
            matrix.units, expected_ratios, matrix.variants, srm_alpha, min_units, min_deviation
        )
        if sequential_method == "anytime":
            sequential: AnytimeSRMResult | SequentialSRMResult = assignment.anytime(
                matrix, expected_ratios, sequential_alpha, concentration, min_units, min_deviation
            )
        else:
            sequential = assignment.sprt_for_ratios(matrix, crossings, expected_ratios, sequential_alpha)
        exposure = None
        if max_multiple_exposure_share is not None:
            exposure = assignment.multiple_exposure(self.source, column, until, max_multiple_exposure_share)

        name = "anytime-valid" if sequential_method == "anytime" else "SPRT"
        candidates = [
            (
                anomaly.anomaly_detected,
                "TRAFFIC_DROP_ANOMALY",
                f"Traffic dropout anomaly detected in the latest complete bin! {anomaly.message}",
                anomaly,
            ),
            (
                live.srm_detected,
                "SRM_SHUTOFF_TRIGGERED",
                f"Critical Sample Ratio Mismatch (SRM) detected! Shutoff triggered. {live.message}",
                live,
            ),
            (
                sequential.srm_detected,
                "SEQUENTIAL_SRM_TRIGGERED",
                f"Sequential {name} Sample Ratio Mismatch detected! Shutoff triggered. {sequential.message}",
                sequential,
            ),
            (
                exposure is not None and exposure.multiple_exposure_detected,
                "MULTIPLE_EXPOSURE",
                f"Units exposed to several variants! {exposure.message if exposure else ''}",
                exposure,
            ),
        ]
        candidates += [
            (
                True,
                "GUARDRAIL_BREACH",
                f"Guardrail breached!{' Shutoff triggered.' if breach.shutoff else ''} {breach.message}",
                breach,
            )
            for breach in (guarded.breaches if guarded is not None else ())
        ]
        alerts = [(kind, message, payload) for fired, kind, message, payload in candidates if fired]
        if live.srm_detected or sequential.srm_detected or (guarded and guarded.shutoff_required):
            self.shutoff_triggered = True
        dispatches = tuple(self._dispatch(kind, message, payload) for kind, message, payload in alerts)
        return TelemetryReport(
            shutoff_triggered=self.shutoff_triggered,
            alerts_triggered=tuple(kind for kind, _, _ in alerts),
            traffic_anomaly=anomaly,
            cumulative_srm=live,
            sequential_srm=sequential,
            traffic=matrix,
            dispatches=tuple(d for d in dispatches if d is not None),
            multiple_exposure=exposure,
            guardrails=guarded,
        )

    def plot_traffic(
        self,
        freq: str = "D",
        path: str | Path | None = None,
        *,
        expected_ratios: Ratios | None = None,
        variant_col: str | None = None,
        window: int = 7,
        z_threshold: float | None = None,
        drop_threshold: float = 0.5,
        alpha: float = 0.01,
        concentration: float = DEFAULT_CONCENTRATION,
        drop_method: str = "seasonal",
    ) -> Figure:
        """Chart the traffic matrix (one query): cumulative units, shares, drops, sequential SRM.

        The four panels are described in :mod:`xpyrment_sql.reporting.charts`; needs the ``plot`` extra.

        Args:
            freq: Bin size.
            path: Also write the figure here, as PNG or SVG (by the suffix).
            expected_ratios: Designed ratios (list aligned with sorted variant names, or dict);
                default an equal split.
            variant_col: Variant column (default: the monitor's).
            window: Bins in the z-score drop test's baseline.
            z_threshold: A bin's z-score below ``-z_threshold`` is a flagged drop; ``None`` for the
                drop method's calibrated default.
            drop_threshold: Relative drop flagged when the baseline has no variance.
            alpha: Level of the anytime-valid SRM test drawn in the last panel.
            concentration: Prior weight of the anytime-valid test.
            drop_method: ``"seasonal"`` or ``"zscore"`` (see :meth:`check_traffic_anomaly`); only
                complete bins are flagged, the bin in progress is drawn hatched.

        Returns:
            The matplotlib Figure (rendered by the Agg canvas; nothing is displayed).
        """
        charts.require_matplotlib()
        if path is not None:
            charts.check_figure_path(path)
        drop_tests.check_drop_method(drop_method)
        check_anomaly_parameters(window, z_threshold, drop_threshold)
        check_alpha(alpha)
        check_concentration(concentration)
        if expected_ratios is not None:
            assignment.check_ratio_values(expected_ratios)
        matrix = self.traffic_matrix(variant_col, freq)
        figure = charts.traffic_figure(
            matrix,
            expected_ratios,
            window=window,
            z_threshold=z_threshold,
            drop_method=drop_method,
            drop_threshold=drop_threshold,
            alpha=alpha,
            concentration=concentration,
        )
        if path is not None:
            charts.save_figure(figure, path)
        return figure

    def calculate_metrics(
        self,
        metrics: Sequence[Metric],
        variant_col: str | None = None,
        control: Any = None,
        unit_col: str | None = None,
        covariate_col: str | None = None,
        alpha: float = 0.05,
    ) -> MetricsReport:
        """Every metric against control for every treatment arm, from one grouped query.

        Rows are summed per unit (default: the monitor's unit column) before the statistics, and rows
        after ``until`` are ignored. See :func:`xpyrment_sql.checks.metrics.calculate_metrics`.
        """
        return calculate_metrics(
            self.source,
            metrics,
            self._variant(variant_col),
            control,
            self._unit(unit_col),
            covariate_col,
            alpha=alpha,
            until=self.until,
        )

    def check_guardrails(
        self,
        guardrails: Sequence[GuardrailMetric],
        control: Any = None,
        unit_col: str | None = None,
        *,
        variant_col: str | None = None,
        covariate_col: str | None = None,
        alpha: float = 0.05,
    ) -> GuardrailReport:
        """Every guardrail on every treatment arm, from one query (see ``guardrails.check_guardrails``).

        Only reports: alerts and ``shutoff_triggered`` come from :meth:`run_telemetry_checks`.
        """
        return self._guardrails(
            guardrails, self._variant(variant_col), self.until, control, unit_col, covariate_col, alpha
        )

    def _guardrails(
        self,
        guardrails: Sequence[GuardrailMetric],
        variant_col: str,
        until: pd.Timestamp | None,
        control: Any = None,
        unit_col: str | None = None,
        covariate_col: str | None = None,
        alpha: float = 0.05,
    ) -> GuardrailReport:
        return check_guardrails(
            self.source,
            guardrails,
            variant_col,
            control,
            self._unit(unit_col),
            covariate_col=covariate_col,
            alpha=alpha,
            until=until,
        )

    def _unit(self, unit_col: str | None) -> str:
        if unit_col is None:
            return self.source.unit_col
        return self.source.require_column(unit_col, "unit_col")

    def _variant(self, variant_col: str | None) -> str:
        if variant_col is None:
            return self.source.variant_col
        return self.source.require_column(variant_col, "variant_col")

    def _traffic(self, variant_col: str, bins: BinSpec, until: pd.Timestamp | None) -> TrafficMatrix:
        counts = self._traffic_counts(variant_col, bins, until)
        return traffic_matrix(counts, bins, variant_col, until)

    def _traffic_and_sprt(
        self,
        variant_col: str,
        bins: BinSpec,
        until: pd.Timestamp | None,
        shares: Sequence[float],
        delta: float,
        alpha: float,
    ) -> tuple[TrafficMatrix, assignment.SprtCrossings | None]:
        """The traffic matrix and, for two-arm shares, the SPRT's first crossings: one query."""
        sprt = assignment.sprt_query(shares, delta, alpha)
        purpose = (
            "the traffic matrix with the SPRT's first crossing "
            "(check_sequential_srm, or sequential_method='sprt')"
        )
        if sprt is not None:
            self.source.require_window_functions(purpose)
        counts = self._traffic_counts(variant_col, bins, until, sprt, purpose)
        matrix = traffic_matrix(counts, bins, variant_col, until)
        crossings = assignment.SprtCrossings.from_counts(counts, shares) if sprt is not None else None
        return matrix, crossings

    def _traffic_counts(
        self,
        variant_col: str,
        bins: BinSpec,
        until: pd.Timestamp | None,
        sprt: queries.SprtSpec | None = None,
        purpose: str = "the traffic matrix",
    ) -> pd.DataFrame:
        span = self.source.span
        chunks = ((None, None),)
        if span is not None and self.exact:
            last = span.last if until is None else min(span.last, until)
            chunks = tuple(time_chunks(bins, span.first, max(last, span.first), span.rows))
        query = queries.traffic_counts(
            self.source, variant_col, bins, until, chunks, self.exact, sprt, max_rows=MAX_MATRIX_CELLS
        )
        counts = self.source.execute(query, purpose)
        if counts["bin"].isna().any():
            raise DataError(
                f"time_col={self.time_col!r} holds timestamps the backend cannot place in a bin "
                "(infinity, or outside the range of epoch seconds); filter them out of the data"
            )
        if len(counts) > MAX_MATRIX_CELLS:
            raise DataError(
                f"the traffic matrix has more than {MAX_MATRIX_CELLS:,} non-empty (bin, variant) cells "
                f"at freq={bins.freq!r}: check that variant_col={variant_col!r} holds the arms (not ids) "
                "and time_col the exposure times, or use a larger freq"
            )
        return counts

    def _dispatch(self, alert_type: str, message: str, payload: Any) -> DispatchOutcome | None:
        if self.dispatcher is None:
            return None
        return self.dispatcher.dispatch(alert_type, message, payload)


def _parse_until(until: Any) -> pd.Timestamp | str | None:
    """``until`` as an aware UTC instant, or ``"now"`` (resolved at every check), or ``None``."""
    if until is None:
        return None
    if isinstance(until, str) and until.strip().lower() == "now":
        return "now"
    try:
        stamp = pd.Timestamp(until)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"until={until!r} is not a timestamp; expected e.g. '2026-12-03 14:00', an aware datetime "
            "or 'now'"
        ) from exc
    if pd.isna(stamp):
        raise ParameterError(f"until={until!r} is not a timestamp; expected a time or 'now'")
    return as_utc(stamp)
