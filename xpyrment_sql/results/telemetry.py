"""The record of a telemetry run (every check at once) and of the alerts it dispatched."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.results.base import Result
from xpyrment_sql.results.metrics import GuardrailReport
from xpyrment_sql.results.srm import (
    AnytimeSRMResult,
    LiveSRMResult,
    MultipleExposureResult,
    SequentialSRMResult,
)
from xpyrment_sql.results.traffic import TrafficAnomalyResult, TrafficMatrix


@dataclasses.dataclass(frozen=True)
class DeliveryRecord(Result):
    """One delivery of one alert to one handler, as kept in the delivery history.

    Safe to store and to show: a handler is named by its kind and host only, and the record holds
    no URL, routing key or token, and no text the server sent (only its status, or the class of the
    error that stopped the delivery).

    Attributes:
        sent_at: When the delivery started (UTC).
        handler: The handler's name, ``kind:host`` (``"slack:hooks.slack.com"``) or ``callback:name``.
        kind: ``"slack"``, ``"email"``, ``"custom"``, ``"pagerduty"`` or ``"callback"``.
        host: The webhook's ``host[:port]`` (``None`` for a callback).
        alert_type: The alert's kind, as dispatched.
        action: ``"trigger"`` or ``"resolve"``.
        key: The alert's stable key (see :func:`xpyrment_sql.alerts.pager.alert_key`).
        outcome: ``"delivered"`` or ``"failed"``.
        attempts: POSTs made (1 for a callback).
        status: The last HTTP status received, if any.
        error: The class of the error that stopped the last attempt (``"ConnectionRefusedError"``,
            ``"TimeoutError"`` when no answer came in time), if any.
        reason: For a failure, why, in the library's words (``"HTTP 503 Service Unavailable after 2
            attempts; Retry-After asked for 120 s, more than the 3.1 s left before the deadline"``).
    """

    sent_at: pd.Timestamp
    handler: str
    kind: str
    host: str | None
    alert_type: str
    action: str
    key: str
    outcome: str
    attempts: int
    status: int | None = None
    error: str | None = None
    reason: str | None = None

    @property
    def delivered(self) -> bool:
        """True when the handler took the alert."""
        return self.outcome == "delivered"

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> DeliveryRecord:
        """Rebuild a record from :meth:`to_dict`'s output or a stored row with the same columns.

        ``sent_at`` may be a timestamp or ISO text (naive means UTC); missing values may be
        ``None`` or NaN, as a data frame read back from a table gives them.

        Raises:
            ParameterError: If a column is missing.

        Examples:
            >>> sent_at = pd.Timestamp("2026-01-05 12:00", tz="UTC")
            >>> record = DeliveryRecord(sent_at, "slack:hooks.slack.com", "slack", "hooks.slack.com",
            ...     "NO_TRAFFIC", "trigger", "check=NO_TRAFFIC", "delivered", attempts=1, status=200)
            >>> DeliveryRecord.from_dict(record.to_dict()) == record
            True
        """
        missing = [name for name in cls._field_names() if name not in row]
        if missing:
            names = ", ".join(missing)
            raise ParameterError(f"row must hold every column of a delivery record; missing: {names}")
        sent_at = pd.Timestamp(row["sent_at"])
        status = _optional(row["status"])
        return cls(
            sent_at=sent_at.tz_localize("UTC") if sent_at.tzinfo is None else sent_at.tz_convert("UTC"),
            handler=str(row["handler"]),
            kind=str(row["kind"]),
            host=_optional_text(row["host"]),
            alert_type=str(row["alert_type"]),
            action=str(row["action"]),
            key=str(row["key"]),
            outcome=str(row["outcome"]),
            attempts=int(row["attempts"]),
            status=None if status is None else int(status),
            error=_optional_text(row["error"]),
            reason=_optional_text(row["reason"]),
        )


def _optional(value: Any) -> Any:
    """``value``, or ``None`` for a missing one (``None``, NaN or NaT, as stored rows give them)."""
    if value is None or value is pd.NaT:
        return None
    return None if isinstance(value, float) and math.isnan(value) else value


def _optional_text(value: Any) -> str | None:
    """``value`` as text, or ``None`` for a missing one."""
    present = _optional(value)
    return None if present is None else str(present)


@dataclasses.dataclass(frozen=True)
class DispatchOutcome(Result):
    """Which alert handlers delivered an alert and which failed, with one record per delivery.

    Handlers are named by kind and host only (``"slack:hooks.slack.com"``, ``"callback:notify"``):
    webhook URLs and routing keys are secrets and never appear in results, logs or errors.

    Attributes:
        alert_type: The alert's kind, as dispatched.
        succeeded: The handlers that took the alert, in dispatch order.
        failed: The handlers that did not.
        deliveries: One :class:`DeliveryRecord` per handler, in dispatch order (the history to keep).
    """

    alert_type: str
    succeeded: tuple[str, ...]
    failed: tuple[str, ...]
    deliveries: tuple[DeliveryRecord, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every registered handler succeeded."""
        return not self.failed


@dataclasses.dataclass(frozen=True)
class StateRun(Result):
    """What a run with a state file read and kept (see :mod:`xpyrment_sql.checks.incremental`).

    Attributes:
        state_path: The state file.
        full_build: True when the state was built from the whole log (its first run, or a refresh).
        since: Start of the window of rows this run read (``None`` for a full build).
        watermark: The latest exposure seen, after this run.
        verified: With ``verify=True``, whether a full recomputation gave the same numbers; else ``None``.
        differences: What differed from the full recomputation (rows that arrived later than the
            lateness allowance show up here).
        deliveries: The most recent alert deliveries kept in the file, newest first (this run's
            included; see :mod:`xpyrment_sql.checks.paging`).
    """

    state_path: str
    full_build: bool
    since: pd.Timestamp | None = None
    watermark: pd.Timestamp | None = None
    verified: bool | None = None
    differences: tuple[str, ...] = ()
    deliveries: tuple[DeliveryRecord, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class TelemetryReport(Result):
    """Everything ``run_telemetry_checks`` found, read like the seed's dict.

    ``shutoff_triggered`` is sticky on the monitor: once an SRM fired it stays True.
    ``sequential_srm`` is the anytime-valid test's record, or the SPRT's with
    ``sequential_method="sprt"``; ``multiple_exposure`` is ``None`` when that check was switched off.
    """

    shutoff_triggered: bool
    alerts_triggered: tuple[str, ...]
    traffic_anomaly: TrafficAnomalyResult
    cumulative_srm: LiveSRMResult
    sequential_srm: AnytimeSRMResult | SequentialSRMResult
    traffic: TrafficMatrix
    dispatches: tuple[DispatchOutcome, ...] = ()
    multiple_exposure: MultipleExposureResult | None = None
    guardrails: GuardrailReport | None = None
    state: StateRun | None = None

    @property
    def healthy(self) -> bool:
        """True when no alert fired."""
        return not self.alerts_triggered
