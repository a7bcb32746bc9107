"""The record of a fleet run: one verdict per experiment in an exposure table, most severe first."""

from __future__ import annotations

import dataclasses

import pandas as pd

from xpyrment_sql.results.base import Result
from xpyrment_sql.results.telemetry import DeliveryRecord, DispatchOutcome, TelemetryReport

STATUSES = ("shutoff", "alert", "no traffic", "healthy", "not running", "unconfigured")
"""Statuses from most to least severe: an SRM (the experiment must stop), another alert, no rows since
the experiment's start, no alert, configured but before its start or past its end without rows, and
seen in the data but neither configured nor given a default split."""


@dataclasses.dataclass(frozen=True, eq=False)
class ExperimentStatus(Result):
    """One experiment's verdict.

    Attributes:
        experiment: Its value in the experiment column.
        status: One of :data:`STATUSES`.
        alerts: The alert kinds it raised (``NO_TRAFFIC`` for a configured experiment without rows).
        units: Distinct units seen in it (within its start and end).
        last_seen: Its latest exposure, or ``None`` without rows.
        report: Every check's record, or ``None`` when it was not tested (no traffic, unconfigured).
        dispatches: The alerts delivered to its routes.
        notes: What was not judged and why (guardrails whose data cannot be compared yet).
    """

    experiment: str | int
    status: str
    alerts: tuple[str, ...] = ()
    units: int = 0
    last_seen: pd.Timestamp | None = None
    report: TelemetryReport | None = None
    dispatches: tuple[DispatchOutcome, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def severity(self) -> int:
        """The status' rank in :data:`STATUSES` (0 is the most severe)."""
        return STATUSES.index(self.status)


@dataclasses.dataclass(frozen=True, eq=False)
class FleetReport(Result):
    """Every experiment's verdict, most severe first (then by id), from one pass over the table.

    Attributes:
        experiments: One status per experiment, configured or seen in the data.
        config_path: The config file the experiments were read from.
        queries: How many queries reached the backend (one per distinct bin size and SPRT design).
        deliveries: With a state file, the most recent alert deliveries kept in it, newest first.
    """

    experiments: tuple[ExperimentStatus, ...]
    config_path: str
    queries: int
    deliveries: tuple[DeliveryRecord, ...] = ()

    def __getitem__(self, key: str) -> object:
        """A field by name, or an experiment's status by its id."""
        if key in self._field_names():
            return getattr(self, key)
        return self.experiment(key)

    def experiment(self, experiment: str | int) -> ExperimentStatus:
        """The status of ``experiment``.

        Raises:
            KeyError: no such experiment in the config or the data.
        """
        for status in self.experiments:
            if status.experiment == experiment or str(status.experiment) == str(experiment):
                return status
        raise KeyError(experiment)

    @property
    def alerting(self) -> bool:
        """True when some experiment raised an alert (the command line then exits with 1)."""
        return any(status.alerts for status in self.experiments)
