"""A fleet run for people and for programs: one line, or one JSON object, per experiment."""

from __future__ import annotations

from typing import Any

from xpyrment_sql.results import FleetReport


def format_fleet(fleet: FleetReport) -> str:
    """A table of every experiment, most severe first: status, units, last exposure, alerts.

    Examples:
        >>> from xpyrment_sql.results import ExperimentStatus
        >>> print(format_fleet(FleetReport((ExperimentStatus("checkout", "no traffic", ("NO_TRAFFIC",)),),
        ...                                "experiments.toml", 1)))
        1 experiment(s) from experiments.toml (1 query); 1 alerting
        status      experiment  units  last seen  alerts
        no traffic  checkout        0  -          NO_TRAFFIC
    """
    alerting = sum(1 for status in fleet.experiments if status.alerts)
    plural = "query" if fleet.queries == 1 else "queries"
    head = (
        f"{len(fleet.experiments)} experiment(s) from {fleet.config_path} "
        f"({fleet.queries} {plural}); {alerting} alerting"
    )
    rows = [("status", "experiment", "units", "last seen", "alerts")]
    for status in fleet.experiments:
        seen = "-" if status.last_seen is None else status.last_seen.strftime("%Y-%m-%d %H:%M UTC")
        rows.append(
            (status.status, str(status.experiment), f"{status.units:,}", seen, ", ".join(status.alerts))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            [cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
            + [row[4]]
        ).rstrip()
        for row in rows
    ]
    return "\n".join([head, *lines])


def fleet_json(fleet: FleetReport) -> dict[str, Any]:
    """One JSON object per experiment, keyed by its id (as text), most severe first."""
    return {str(status.experiment): status.to_dict() for status in fleet.experiments}
