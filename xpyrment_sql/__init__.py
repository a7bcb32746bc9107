"""xpyrment_sql: live A/B experiment health checks pushed down into DuckDB or your warehouse.

Ibis expressions do the row-level work (time bins, distinct units, first exposures, running counts)
where the data lives; only small matrices come back for the statistics.
"""

from xpyrment_sql.alerts.dispatcher import WebhookAlertDispatcher
from xpyrment_sql.checks.guardrails import GuardrailMetric, check_guardrails
from xpyrment_sql.checks.metrics import MeanMetric, ProportionMetric, RatioMetric, calculate_metrics
from xpyrment_sql.errors import (
    ColumnError,
    DataError,
    ParameterError,
    SourceError,
    XpyrmentError,
)
from xpyrment_sql.monitor import LiveMonitor
from xpyrment_sql.results.metrics import GuardrailReport, GuardrailResult, MetricResult, MetricsReport

__all__ = [
    "ColumnError",
    "DataError",
    "GuardrailMetric",
    "GuardrailReport",
    "GuardrailResult",
    "LiveMonitor",
    "MeanMetric",
    "MetricResult",
    "MetricsReport",
    "ParameterError",
    "ProportionMetric",
    "RatioMetric",
    "SourceError",
    "WebhookAlertDispatcher",
    "XpyrmentError",
    "calculate_metrics",
    "check_guardrails",
]

__version__ = "0.1.0"
