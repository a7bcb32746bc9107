"""LiveMonitor: the seed's monitoring API, with every row-level reduction pushed into the backend.

The monitor is the only place where queries (``queries.py``) and statistics (``stats/``) meet: it
sends a query, receives a small matrix, hands it to a pure function and dispatches alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xpyrment_sql import queries
from xpyrment_sql.alerts import WebhookAlertDispatcher
from xpyrment_sql.bins import BinSpec, as_utc, check_tz, parse_freq, time_chunks
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results import (
    DispatchOutcome,
    LiveSRMResult,
    SequentialSRMResult,
    TelemetryReport,
    TrafficAnomalyResult,
    TrafficMatrix,
    frozen_array,
)
from xpyrment_sql.source import EngineSettings, Source, open_source
from xpyrment_sql.stats.anomaly import check_anomaly_parameters, traffic_drop_test
from xpyrment_sql.stats.srm import (
    check_alpha,
    check_sprt_parameters,
    chi_square_srm,
    expected_shares,
    find_control,
    sprt_coefficients,
    sprt_log_likelihood_ratio,
    sprt_search_bins,
)
from xpyrment_sql.traffic import traffic_matrix

logger = logging.getLogger(__name__)

Ratios = Sequence[float] | Mapping[Any, float]


class LiveMonitor:
    """Watches a running experiment's exposure log: traffic, sample ratio mismatch, alerts.

    Args:
        data: A Parquet/CSV path or glob, a pandas/polars DataFrame, a pyarrow Table, an Ibis table,
            or a connection URL (then ``table=`` names the table).
        time_col: Column of exposure timestamps (TIMESTAMP, TIMESTAMPTZ, DATE or parseable strings).
        dispatcher: Where alerts from :meth:`run_telemetry_checks` go.
        unit_col: Randomisation unit column; default ``unit_id`` if present, else the first column.
        variant_col: Variant column used when a method is not given one.
        table: Table name for a connection URL (``schema.table`` accepted).
        until: Evaluate as of this time: later rows are ignored and every bin up to the one holding
            ``until`` is shown, so an outage still going on appears as zero bins. Naive means UTC.
        tz: IANA zone whose local midnight starts day and week bins; labels are shown in it.
        exact: ``False`` counts active units per bin with the backend's HyperLogLog
            (``approx_count_distinct``): much faster and lighter on huge logs, a few percent off per
            cell. First exposures, cumulative traffic and every SRM test stay exact.
        memory_limit: DuckDB ``memory_limit`` for the embedded engine (e.g. ``"8GB"``); larger
            intermediate results spill to ``temp_directory``.
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
            engine=EngineSettings(memory_limit, threads, temp_directory, progress),
        )
        self.exact = bool(exact)
        self.dispatcher = dispatcher
        self.tz = check_tz(tz)
        self.until = _parse_until(until)
        self.shutoff_triggered = False

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
        return self._traffic(self._variant(variant_col), bins)

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
        z_threshold: float = 3.0,
        drop_threshold: float = 0.5,
    ) -> TrafficAnomalyResult:
        """Z-score test of the latest bin's total units against the preceding ``window`` bins."""
        check_anomaly_parameters(window, z_threshold, drop_threshold)
        matrix = self.traffic_matrix(variant_col, freq)
        return traffic_drop_test(matrix.active.sum(axis=1), window, z_threshold, drop_threshold)

    def check_live_srm(
        self, expected_ratios: Ratios, variant_col: str | None = None, alpha: float = 0.001
    ) -> LiveSRMResult:
        """Chi-square SRM test on distinct units per variant (one ``COUNT(DISTINCT)`` query).

        Args:
            expected_ratios: Designed ratios, a list aligned with the sorted variant names or a dict
                ``{variant: ratio}``.
            variant_col: Variant column (default: the monitor's).
            alpha: Significance level; ``srm_detected`` is ``p_value < alpha``.
        """
        check_alpha(alpha)
        _check_ratio_values(expected_ratios)
        column = self._variant(variant_col)
        units = self.source.execute(queries.units_per_variant(self.source, column, self.until))
        units = units.sort_values("variant")
        return chi_square_srm(
            units["units"].to_numpy(), expected_ratios, tuple(units["variant"].tolist()), alpha
        )

    def check_sequential_srm(
        self,
        variant_col: str | None = None,
        target_treatment_ratio: float = 0.5,
        delta: float = 0.02,
        alpha: float = 0.01,
        freq: str = "D",
    ) -> SequentialSRMResult:
        """Two-arm mixture SPRT over units in order of first exposure.

        The exact stopping position is found in the backend (running counts in window functions);
        ``running_likelihood_ratios`` is the LR at the end of each ``freq`` bin.
        """
        check_sprt_parameters(target_treatment_ratio, delta, alpha)
        matrix = self.traffic_matrix(variant_col, freq)
        return self._sequential(matrix, target_treatment_ratio, delta, alpha)

    def run_telemetry_checks(
        self,
        expected_ratios: Ratios,
        variant_col: str | None = None,
        freq: str = "D",
        window: int = 7,
        z_threshold: float = 3.0,
        srm_alpha: float = 0.001,
        sequential_alpha: float = 0.01,
    ) -> TelemetryReport:
        """Traffic anomaly, chi-square SRM and sequential SRM, with alerts dispatched.

        At most two queries reach the backend: the traffic matrix, and (for two arms) the SPRT's
        first crossing. An SRM from either test sets the sticky ``shutoff_triggered`` flag.
        """
        check_anomaly_parameters(window, z_threshold, 0.5)
        check_alpha(srm_alpha, "srm_alpha")
        check_alpha(sequential_alpha, "sequential_alpha")
        _check_ratio_values(expected_ratios)
        matrix = self.traffic_matrix(variant_col, freq)
        anomaly = traffic_drop_test(matrix.active.sum(axis=1), window, z_threshold)
        live = chi_square_srm(matrix.units, expected_ratios, matrix.variants, srm_alpha)
        sequential = self._sequential_for_ratios(matrix, expected_ratios, sequential_alpha)

        alerts: list[tuple[str, str, Any]] = []
        if anomaly.anomaly_detected:
            alerts.append(
                (
                    "TRAFFIC_DROP_ANOMALY",
                    f"Traffic dropout anomaly detected in the latest bin! {anomaly.message}",
                    anomaly,
                )
            )
        if live.srm_detected:
            alerts.append(
                (
                    "SRM_SHUTOFF_TRIGGERED",
                    f"Critical Sample Ratio Mismatch (SRM) detected! Shutoff triggered. {live.message}",
                    live,
                )
            )
        if sequential.srm_detected:
            alerts.append(
                (
                    "SEQUENTIAL_SRM_TRIGGERED",
                    "Sequential SPRT Sample Ratio Mismatch detected! Shutoff triggered. "
                    f"{sequential.message}",
                    sequential,
                )
            )
        if live.srm_detected or sequential.srm_detected:
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
        )

    def _variant(self, variant_col: str | None) -> str:
        if variant_col is None:
            return self.source.variant_col
        return self.source.require_column(variant_col, "variant_col")

    def _traffic(self, variant_col: str, bins: BinSpec) -> TrafficMatrix:
        span = self.source.span
        chunks = ((None, None),)
        if span is not None and self.exact:
            last = span.last if self.until is None else min(span.last, self.until)
            chunks = tuple(time_chunks(bins, span.first, max(last, span.first), span.rows))
        counts = self.source.execute(
            queries.traffic_counts(self.source, variant_col, bins, self.until, chunks, self.exact)
        )
        last_key = bins.key_of(self.until) if self.until is not None else None
        return traffic_matrix(counts, bins, variant_col, last_key)

    def _sequential_for_ratios(
        self, matrix: TrafficMatrix, expected_ratios: Ratios, alpha: float, delta: float = 0.02
    ) -> SequentialSRMResult:
        if len(matrix.variants) != 2:
            return self._sequential(matrix, 0.5, delta, alpha)
        shares = expected_shares(expected_ratios, matrix.variants)
        _, treatment = find_control(matrix.variants)
        p0 = float(shares[matrix.variants.index(treatment)])
        if not (p0 - delta > 0 and p0 + delta < 1):
            return SequentialSRMResult(
                False,
                f"Sequential SPRT skipped: the designed treatment share {p0:.4f} leaves no room for "
                f"alternatives at +/- delta={delta}.",
            )
        return self._sequential(matrix, p0, delta, alpha)

    def _sequential(
        self, matrix: TrafficMatrix, target_treatment_ratio: float, delta: float, alpha: float
    ) -> SequentialSRMResult:
        if not matrix.variants:
            return SequentialSRMResult(False, "No assignment data available.")
        if len(matrix.variants) != 2:
            logger.warning("Sequential SRM (SPRT) is only supported for two-arm (binary) experiments.")
            return SequentialSRMResult(
                False, "Sequential SRM SPRT is only supported for exactly two variants."
            )
        control, treatment = find_control(matrix.variants)
        new_treatment = matrix.new[:, matrix.variants.index(treatment)]
        new_total = matrix.new.sum(axis=1)
        log_lr = sprt_log_likelihood_ratio(
            np.cumsum(new_treatment), np.cumsum(new_total), target_treatment_ratio, delta
        )
        search = sprt_search_bins(new_treatment, new_total, target_treatment_ratio, delta, alpha)
        crossing = pd.DataFrame({"stopped_index": [], "stopped_at": []})
        if search is not None:
            first, last = search
            edges = parse_freq(matrix.freq, self.tz).labels(
                np.array([matrix.first_key + first, matrix.first_key + last + 1])
            )
            window = queries.SequenceWindow(
                since=as_utc(edges[0]),
                before=as_utc(edges[1]),
                units_before=int(new_total[:first].sum()),
                treatment_before=int(new_treatment[:first].sum()),
            )
            crossing = self.source.execute(
                queries.first_sprt_crossing(
                    self.source,
                    matrix.variant_col,
                    treatment,
                    sprt_coefficients(target_treatment_ratio, delta),
                    float(np.log(1.0 / alpha)),
                    window,
                    self.until,
                )
            )
        stopped_index = int(crossing["stopped_index"].iloc[0]) if len(crossing) else -1
        detected = stopped_index >= 0
        with np.errstate(over="ignore"):
            likelihood_ratios = np.exp(log_lr)
        return SequentialSRMResult(
            srm_detected=detected,
            message=(f"Sequential SPRT finished. SRM detected: {detected} at index {stopped_index}."),
            stopped_index=stopped_index,
            running_likelihood_ratios=frozen_array(likelihood_ratios),
            running_log_likelihood_ratios=frozen_array(log_lr),
            bins=matrix.bins,
            stopped_at=pd.Timestamp(crossing["stopped_at"].iloc[0]) if detected else None,
            control=control,
            treatment=treatment,
            target_treatment_ratio=target_treatment_ratio,
            delta=delta,
            alpha=alpha,
        )

    def _dispatch(self, alert_type: str, message: str, payload: Any) -> DispatchOutcome | None:
        if self.dispatcher is None:
            return None
        return self.dispatcher.dispatch(alert_type, message, payload)


def _check_ratio_values(expected_ratios: Ratios) -> None:
    """Reject non-positive ratios before any query runs (alignment is checked against the data)."""
    values = expected_ratios.values() if isinstance(expected_ratios, Mapping) else expected_ratios
    try:
        numbers = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"expected_ratios must be a list of numbers or a dict {{variant: ratio}}; got {expected_ratios!r}"
        ) from exc
    if numbers.size == 0 or not np.all(np.isfinite(numbers)) or np.any(numbers <= 0):
        raise ParameterError(f"expected_ratios must be positive numbers; got {expected_ratios!r}")


def _parse_until(until: Any) -> pd.Timestamp | None:
    if until is None:
        return None
    try:
        stamp = pd.Timestamp(until)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"until={until!r} is not a timestamp") from exc
    return as_utc(stamp)
