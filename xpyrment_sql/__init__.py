"""xpyrment_sql: live A/B experiment health checks pushed down into DuckDB or your warehouse.

Ibis expressions do the row-level work (time bins, distinct units, first exposures, running counts)
where the data lives; only small matrices come back for the statistics.

Every check, every result record (:mod:`xpyrment_sql.results`) and every error
(:mod:`xpyrment_sql.errors`) is importable from here.
"""

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.metrics import MeanMetric, ProportionMetric, RatioMetric, calculate_metrics
from xpyrment_sql.config import ConfigError, ExperimentConfig, FleetConfig, read_config
from xpyrment_sql.errors import (
    BackendError,
    ColumnError,
    DataError,
    ParameterError,
    SourceError,
    XpyrmentError,
)
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.results import (
    AnytimeSRMResult,
    DeliveryRecord,
    DispatchOutcome,
    ExperimentStatus,
    FleetReport,
    GuardrailReport,
    GuardrailResult,
    LiveSRMResult,
    MetricResult,
    MetricsReport,
    MultipleExposureResult,
    Result,
    SegmentSRMResult,
    SequentialSRMResult,
    StateRun,
    TelemetryReport,
    TrafficAnomalyResult,
    TrafficMatrix,
)
from xpyrment_sql.settings import CheckSettings, Design

__all__ = [
    "AnytimeSRMResult",
    "BackendError",
    "CheckSettings",
    "ColumnError",
    "ConfigError",
    "DataError",
    "DeliveryRecord",
    "Design",
    "DispatchOutcome",
    "ExperimentConfig",
    "ExperimentStatus",
    "FleetConfig",
    "FleetReport",
    "GuardrailMetric",
    "GuardrailReport",
    "GuardrailResult",
    "LiveMonitor",
    "LiveSRMResult",
    "MeanMetric",
    "MetricResult",
    "MetricsReport",
    "MultipleExposureResult",
    "ParameterError",
    "ProportionMetric",
    "RatioMetric",
    "Result",
    "SegmentSRMResult",
    "SequentialSRMResult",
    "SourceError",
    "StateRun",
    "TelemetryReport",
    "TrafficAnomalyResult",
    "TrafficMatrix",
    "WebhookAlertDispatcher",
    "XpyrmentError",
    "calculate_metrics",
    "check_guardrails",
    "read_config",
]

__version__ = "0.1.0"
