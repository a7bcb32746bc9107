"""Which alerts a run of the checks raises, with what message, and when the experiment must stop.

The rules read result records only; delivering the alerts is the dispatcher's job
(:mod:`xpyrment_sql.alerts.dispatcher`). Alert kinds keep the seed's names, so handlers written for the
seed's dicts keep matching on them.

Shutoff policy: an SRM from either test (chi-square or sequential) means the randomisation is broken,
so the experiment's results cannot be trusted and ``shutoff_triggered`` is set; a guardrail sets it
only when it was built with ``shutoff=True``. A traffic drop and multiple exposure alert without it.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from xpyrment_sql.results import (
    AnytimeSRMResult,
    LiveSRMResult,
    MultipleExposureResult,
    SequentialSRMResult,
    TelemetryReport,
    TrafficAnomalyResult,
)
from xpyrment_sql.results.metrics import GuardrailReport


class AlertKind(str, enum.Enum):
    """The kinds of alert a run can raise (their values are the seed's alert type strings)."""

    TRAFFIC_DROP_ANOMALY = "TRAFFIC_DROP_ANOMALY"
    SRM_SHUTOFF_TRIGGERED = "SRM_SHUTOFF_TRIGGERED"
    SEQUENTIAL_SRM_TRIGGERED = "SEQUENTIAL_SRM_TRIGGERED"
    MULTIPLE_EXPOSURE = "MULTIPLE_EXPOSURE"
    GUARDRAIL_BREACH = "GUARDRAIL_BREACH"
    NO_TRAFFIC = "NO_TRAFFIC"
    """A configured experiment has no exposure since its start (fleet runs, ``check_all``)."""


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert: its kind, the message a person reads, the record behind it, and whether it stops
    the experiment."""

    kind: AlertKind
    message: str
    payload: Any
    shutoff: bool = False


def telemetry_alerts(
    anomaly: TrafficAnomalyResult,
    live: LiveSRMResult,
    sequential: AnytimeSRMResult | SequentialSRMResult,
    exposure: MultipleExposureResult | None = None,
    guardrails: GuardrailReport | None = None,
) -> tuple[Alert, ...]:
    """The alerts a telemetry run raises, in the order they are dispatched."""
    name = "SPRT"
    if isinstance(sequential, AnytimeSRMResult):
        name = "change-point" if sequential.method == "changepoint" else "anytime-valid"
    alerts = []
    if anomaly.anomaly_detected:
        alerts.append(
            Alert(
                AlertKind.TRAFFIC_DROP_ANOMALY,
                f"Traffic dropout anomaly detected in the latest complete bin! {anomaly.message}",
                anomaly,
            )
        )
    if live.srm_detected:
        alerts.append(
            Alert(
                AlertKind.SRM_SHUTOFF_TRIGGERED,
                f"Critical Sample Ratio Mismatch (SRM) detected! Shutoff triggered. {live.message}",
                live,
                shutoff=True,
            )
        )
    if sequential.srm_detected:
        alerts.append(
            Alert(
                AlertKind.SEQUENTIAL_SRM_TRIGGERED,
                f"Sequential {name} Sample Ratio Mismatch detected! Shutoff triggered. {sequential.message}",
                sequential,
                shutoff=True,
            )
        )
    if exposure is not None and exposure.multiple_exposure_detected:
        message = f"Units exposed to several variants! {exposure.message}"
        alerts.append(Alert(AlertKind.MULTIPLE_EXPOSURE, message, exposure))
    for breach in guardrails.breaches if guardrails is not None else ():
        stop = " Shutoff triggered." if breach.shutoff else ""
        message = f"Guardrail breached!{stop} {breach.message}"
        alerts.append(Alert(AlertKind.GUARDRAIL_BREACH, message, breach, shutoff=breach.shutoff))
    return tuple(alerts)


def report_alerts(report: TelemetryReport) -> tuple[Alert, ...]:
    """The alerts a telemetry report raised, rebuilt from its records (to dispatch them)."""
    return telemetry_alerts(
        report.traffic_anomaly,
        report.cumulative_srm,
        report.sequential_srm,
        report.multiple_exposure,
        report.guardrails,
    )


def shutoff_required(alerts: tuple[Alert, ...]) -> bool:
    """True when some alert stops the experiment (see the module's shutoff policy)."""
    return any(alert.shutoff for alert in alerts)
