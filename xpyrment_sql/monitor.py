"""LiveMonitor: the seed's monitoring API as a facade over the checks.

Each method validates its arguments once (into :class:`~xpyrment_sql.settings.CheckSettings` and
:class:`~xpyrment_sql.settings.Design` where they apply), resolves the evaluation instant and hands
over to a module of :mod:`xpyrment_sql.checks`, which plans the queries, runs them and computes the
statistics. The monitor itself keeps only what lives across calls: the source, the dispatcher and
the sticky ``shutoff_triggered`` flag.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.bins import as_utc, check_tz, parse_freq
from xpyrment_sql.checks.drops import judge_traffic_drop
from xpyrment_sql.checks.exposure import multiple_exposure
from xpyrment_sql.checks.fleet import run_fleet
from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.incremental import DEFAULT_LATENESS, DEFAULT_RENOTIFY, StateSettings
from xpyrment_sql.checks.metrics import Metric, calculate_metrics
from xpyrment_sql.checks.segments import check_dimension_cols, srm_by_segment
from xpyrment_sql.checks.srm import anytime, live_srm, sprt, sprt_candidate_shares
from xpyrment_sql.checks.telemetry import run_telemetry
from xpyrment_sql.checks.traffic import fetch_matrix
from xpyrment_sql.config import FleetConfig, read_config
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.reporting import charts
from xpyrment_sql.results import (
    AnytimeSRMResult,
    LiveSRMResult,
    MultipleExposureResult,
    SegmentSRMResult,
    SequentialSRMResult,
    TelemetryReport,
    TrafficAnomalyResult,
    TrafficMatrix,
)
from xpyrment_sql.results.fleet import FleetReport
from xpyrment_sql.results.metrics import GuardrailReport, MetricsReport
from xpyrment_sql.settings import CheckSettings, Design, Ratios, check_max_share
from xpyrment_sql.source import EngineSettings, Source, open_source
from xpyrment_sql.stats.segment_srm import check_min_expected_units
from xpyrment_sql.stats.srm import (
    DEFAULT_CONCENTRATION,
    check_alpha,
    check_concentration,
    check_gates,
    check_sprt_parameters,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
        state: A local file (a DuckDB database the library creates, never in your database) where
            :meth:`run_telemetry_checks` keeps what it learned: later runs read only the rows since
            the last one (minus ``lateness``) and give exactly a full run's results. Files and
            DataFrames only; see :mod:`xpyrment_sql.checks.incremental`.
        lateness: How late a row may arrive and still be counted by a run with ``state`` (default
            one hour): size it to your pipeline's largest delay.
        refresh: Rebuild ``state`` from the whole log (needed when it was built from another source,
            columns, bin size or zone, which is refused otherwise).
        verify: With ``state``, also recompute from the whole log and report any difference
            (``report.state.differences``): rows later than ``lateness`` show up there.
        renotify: With ``state`` and a dispatcher, alerts are paged: each is sent at its onset,
            again only after it stayed active this long (default 24 hours), and a "resolved"
            message follows when its condition clears (see :mod:`xpyrment_sql.checks.paging`).
            Without ``state`` every run sends every active alert.

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
        state: str | os.PathLike[str] | None = None,
        lateness: Any = DEFAULT_LATENESS,
        refresh: bool = False,
        verify: bool = False,
        renotify: Any = DEFAULT_RENOTIFY,
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
        self.state = None if state is None else StateSettings.of(state, lateness, refresh, verify, renotify)
        self.shutoff_triggered = False

    @property
    def until(self) -> pd.Timestamp | None:
        """The evaluation instant (aware UTC), ``None`` for the latest exposure; ``"now"`` is read afresh."""
        if isinstance(self._until, str):
            return pd.Timestamp.now(tz="UTC")
        return self._until

    @property
    def time_col(self) -> str | None:
        """The exposure timestamp column (``None`` only for a source opened without one)."""
        return self.source.time_col

    @property
    def unit_col(self) -> str:
        """The randomisation unit column."""
        return self.source.unit_col

    def traffic_matrix(self, variant_col: str | None = None, freq: str = "D") -> TrafficMatrix:
        """Active and first-exposure distinct units per bin and variant, in one query."""
        bins = parse_freq(freq, self.tz)
        return fetch_matrix(self.source, self._variant(variant_col), bins, self.until, self.exact)[0]

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
        settings = CheckSettings(
            freq=freq,
            window=window,
            z_threshold=z_threshold,
            drop_threshold=drop_threshold,
            drop_method=method,
        )
        matrix = self.traffic_matrix(variant_col, settings.freq)
        return judge_traffic_drop(
            matrix, settings.drop_method, settings.window, settings.z_threshold, settings.drop_threshold
        )

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
        design = Design(expected_ratios)
        column = self._variant(variant_col)
        return live_srm(
            self.source, column, self.until, design.expected_ratios, alpha, min_units, min_deviation
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
        design = Design(expected_ratios)
        matrix = self.traffic_matrix(variant_col, freq)
        return anytime(matrix, design.expected_ratios, alpha, concentration, min_units, min_deviation)

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
        matrix, crossings = fetch_matrix(
            self.source,
            self._variant(variant_col),
            parse_freq(freq, self.tz),
            self.until,
            self.exact,
            sprt_candidate_shares(target_treatment_ratio),
            delta,
            alpha,
        )
        return sprt(matrix, crossings, target_treatment_ratio, delta, alpha)

    def check_multiple_exposure(
        self, variant_col: str | None = None, max_share: float = 0.01
    ) -> MultipleExposureResult:
        """Units seen under more than one variant, in total and per pair of variants (one query).

        ``multiple_exposure_detected`` is ``share > max_share``. Such units still count once in each
        of their variants in the traffic and SRM checks (see :mod:`xpyrment_sql.checks.srm`).
        """
        max_share = check_max_share(max_share)
        return multiple_exposure(self.source, self._variant(variant_col), self.until, max_share)

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
        tested. See :func:`xpyrment_sql.checks.segments.srm_by_segment`.

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
        design = Design(expected_ratios)
        column = self._variant(variant_col)
        dimensions = check_dimension_cols(self.source, dimension_cols, column)
        return srm_by_segment(
            self.source, column, dimensions, self.until, design.expected_ratios, alpha, min_expected_units
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
        sequential_method: str = "changepoint",
        concentration: float = DEFAULT_CONCENTRATION,
        min_units: int = 0,
        min_deviation: float = 0.0,
        max_multiple_exposure_share: float | None = 0.01,
        guardrails: Sequence[GuardrailMetric] = (),
        drop_method: str = "seasonal",
    ) -> TelemetryReport:
        """Traffic anomaly, chi-square SRM, sequential SRM and multiple exposure, with alerts dispatched.

        The sequential check is the change-point mixture (anytime-valid, any number of arms, computed
        from the traffic matrix; it also names the day a mismatch started), the cumulative anytime
        test with ``sequential_method="anytime"``, or, with ``sequential_method="sprt"``, the seed's
        two-arm SPRT, which ignores
        ``min_units`` and ``min_deviation``. At most two queries reach the backend: the traffic
        matrix (which, for the SPRT, also finds its first crossing, and counts multiple exposure
        unless ``max_multiple_exposure_share=None``) and the guardrails. An SRM from either
        test sets the sticky ``shutoff_triggered`` flag; multiple exposure alerts without it.
        ``guardrails`` adds one query (all guarded metrics at once) and a ``GUARDRAIL_BREACH`` alert per
        breached guardrail and treatment arm; only guardrails built with ``shutoff=True`` set
        ``shutoff_triggered``. The drop test judges the latest complete bin with ``drop_method``
        (see :meth:`check_traffic_anomaly`; ``z_threshold=None`` is that method's default). Every
        check is evaluated at one instant, ``until`` as it stood when the run started.
        """
        settings = CheckSettings(
            freq=freq,
            window=window,
            z_threshold=z_threshold,
            drop_method=drop_method,
            srm_alpha=srm_alpha,
            sequential_alpha=sequential_alpha,
            sequential_method=sequential_method,
            concentration=concentration,
            min_units=min_units,
            min_deviation=min_deviation,
            max_multiple_exposure_share=max_multiple_exposure_share,
        )
        return self.run(Design(expected_ratios), settings, variant_col, guardrails)

    def run(
        self,
        design: Design,
        settings: CheckSettings,
        variant_col: str | None = None,
        guardrails: Sequence[GuardrailMetric] = (),
    ) -> TelemetryReport:
        """:meth:`run_telemetry_checks` with its arguments as the two validated records.

        For callers that keep a design and settings (a config file, the command line's report):
        every check runs from one plan (:func:`xpyrment_sql.checks.telemetry.run_telemetry`) at the
        evaluation instant as it stood when the run started, the alerts go to the dispatcher and
        ``shutoff_triggered`` stays set once an SRM (or a shutoff guardrail) fired.
        """
        report = run_telemetry(
            self.source,
            self._variant(variant_col),
            design,
            settings,
            self.until,
            tz=self.tz,
            exact=self.exact,
            guardrails=guardrails,
            dispatcher=self.dispatcher,
            state=self.state,
        )
        self.shutoff_triggered = self.shutoff_triggered or report.shutoff_triggered
        return dataclasses.replace(report, shutoff_triggered=self.shutoff_triggered)

    def check_all(
        self,
        config: FleetConfig | str | os.PathLike[str],
        experiment_col: str = "experiment",
        variant_col: str | None = None,
    ) -> FleetReport:
        """Check every experiment of an exposure table that holds many, in one pass.

        ``config`` is a TOML file (or a :class:`~xpyrment_sql.config.FleetConfig`) giving each
        experiment's design and checks (see :mod:`xpyrment_sql.config`). One query per distinct bin
        size (and SPRT design) counts every experiment at once, grouped by ``experiment_col``; each
        experiment's numbers then go through the checks of :meth:`run_telemetry_checks`. Experiments
        seen in the data but not in the config are listed as ``unconfigured`` (tested when
        ``[defaults]`` gives ratios); a configured experiment without rows since its ``start`` raises
        ``NO_TRAFFIC``. Alerts name their experiment and go to its routes and the monitor's dispatcher.
        With the monitor's ``state``, one state file keeps every experiment's counts, and a later run
        reads only the rows since its watermark (the file is tied to the experiments' bin sizes and
        windows: adding an experiment or moving its ``start``/``end`` needs ``refresh=True``).

        Raises:
            ConfigError: a bad config file (naming the file, the experiment and the key), or ratios
                that do not name an experiment's variants in the data.
        """
        if not self.exact:
            raise ParameterError("check_all counts active units exactly; open the monitor with exact=True")
        fleet = config if isinstance(config, FleetConfig) else read_config(config)
        return run_fleet(
            self.source,
            experiment_col,
            self._variant(variant_col),
            fleet,
            self.until,
            tz=self.tz,
            dispatcher=self.dispatcher,
            state=self.state,
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
        sequential_method: str = "changepoint",
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
            alpha: Level of the sequential SRM test drawn in the last panel.
            concentration: Prior weight of the anytime-valid test (the change-point's ``c0``).
            drop_method: ``"seasonal"`` or ``"zscore"`` (see :meth:`check_traffic_anomaly`); only
                complete bins are flagged, the bin in progress is drawn hatched.
            sequential_method: ``"changepoint"`` draws its evidence ``R_t`` against ``1/alpha``;
                ``"anytime"`` or ``"sprt"`` the cumulative anytime-valid p-value against ``alpha``.

        Returns:
            The matplotlib Figure (rendered by the Agg canvas; nothing is displayed).
        """
        charts.require_matplotlib()
        if path is not None:
            charts.check_figure_path(path)
        settings = CheckSettings(
            freq=freq,
            window=window,
            z_threshold=z_threshold,
            drop_threshold=drop_threshold,
            drop_method=drop_method,
            sequential_method=sequential_method,
        )
        check_alpha(alpha)
        check_concentration(concentration)
        if expected_ratios is not None:
            Design(expected_ratios)
        matrix = self.traffic_matrix(variant_col, settings.freq)
        figure = charts.traffic_figure(
            matrix,
            expected_ratios,
            window=settings.window,
            z_threshold=settings.z_threshold,
            drop_method=settings.drop_method,
            drop_threshold=settings.drop_threshold,
            alpha=alpha,
            concentration=concentration,
            sequential_method=settings.sequential_method,
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
        return check_guardrails(
            self.source,
            guardrails,
            self._variant(variant_col),
            control,
            self._unit(unit_col),
            covariate_col=covariate_col,
            alpha=alpha,
            until=self.until,
        )

    def _unit(self, unit_col: str | None) -> str:
        if unit_col is None:
            return self.source.unit_col
        return self.source.require_column(unit_col, "unit_col")

    def _variant(self, variant_col: str | None) -> str:
        if variant_col is None:
            return self.source.variant_col
        return self.source.require_column(variant_col, "variant_col")


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
