"""Typed, immutable result records that also read like the seed's dictionaries.

Every check returns a frozen dataclass. ``res.p_value`` and ``res["p_value"]`` both work, so code written
against the seed's dicts keeps running; ``res.to_dict()`` gives plain JSON-able values (numpy scalars and
arrays become Python numbers and lists, nested records become dicts, frames become lists of records).

The records live by concept, and import only downwards (``base`` <- ``traffic``, ``srm``, ``metrics`` <-
``telemetry``):

- :mod:`~xpyrment_sql.results.base`: :class:`Result`, :func:`to_jsonable`, :func:`frozen_array`;
- :mod:`~xpyrment_sql.results.traffic`: the traffic matrix and the traffic-drop test;
- :mod:`~xpyrment_sql.results.srm`: the SRM tests and multiple exposure;
- :mod:`~xpyrment_sql.results.metrics`: metric calculations and guardrails;
- :mod:`~xpyrment_sql.results.telemetry`: a telemetry run, the alerts it dispatched and their deliveries;
- :mod:`~xpyrment_sql.results.fleet`: every experiment of a table, one verdict each.
"""

from xpyrment_sql.results.base import Result, frozen_array, to_jsonable
from xpyrment_sql.results.fleet import ExperimentStatus, FleetReport
from xpyrment_sql.results.metrics import GuardrailReport, GuardrailResult, MetricResult, MetricsReport
from xpyrment_sql.results.srm import (
    AnytimeSRMResult,
    LiveSRMResult,
    MultipleExposureResult,
    SegmentSRMResult,
    SequentialSRMResult,
)
from xpyrment_sql.results.telemetry import DeliveryRecord, DispatchOutcome, StateRun, TelemetryReport
from xpyrment_sql.results.traffic import TrafficAnomalyResult, TrafficMatrix

__all__ = [
    "AnytimeSRMResult",
    "DeliveryRecord",
    "DispatchOutcome",
    "ExperimentStatus",
    "FleetReport",
    "GuardrailReport",
    "GuardrailResult",
    "LiveSRMResult",
    "MetricResult",
    "MetricsReport",
    "MultipleExposureResult",
    "Result",
    "SegmentSRMResult",
    "SequentialSRMResult",
    "StateRun",
    "TelemetryReport",
    "TrafficAnomalyResult",
    "TrafficMatrix",
    "frozen_array",
    "to_jsonable",
]
