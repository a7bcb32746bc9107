"""The record of a telemetry run (every check at once) and of the alerts it dispatched."""

from __future__ import annotations

import dataclasses

import pandas as pd

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
class DispatchOutcome(Result):
    """Which alert handlers delivered an alert and which failed.

    Handlers are named by kind and host only (``"slack:hooks.slack.com"``, ``"callback:notify"``):
    webhook URLs are secrets and never appear in results, logs or errors.
    """

    alert_type: str
    succeeded: tuple[str, ...]
    failed: tuple[str, ...]

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
    """

    state_path: str
    full_build: bool
    since: pd.Timestamp | None = None
    watermark: pd.Timestamp | None = None
    verified: bool | None = None
    differences: tuple[str, ...] = ()


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
