"""A fleet run for people and for programs: a text table, JSON, and a report page (HTML or Markdown).

The report leads with one row per experiment, most severe first (status, units, split, the SRM
evidence, the drop test, the last exposure seen), each linking to the experiment's section: its
checks, its traffic chart, its split and its newest bins. The HTML page is self-contained like the
single-experiment report (:mod:`xpyrment_sql.reporting.documents`): no fetch leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from xpyrment_sql.config import FleetConfig
from xpyrment_sql.reporting.charts import traffic_png
from xpyrment_sql.reporting.documents import (
    html_block,
    html_page,
    html_section,
    markdown_block,
    markdown_text,
    report_format,
)
from xpyrment_sql.reporting.sections import Chart, Section, Table, delivery_blocks, experiment_blocks
from xpyrment_sql.results import ExperimentStatus, FleetReport


def format_fleet(fleet: FleetReport) -> str:
    """A table of every experiment, most severe first: status, units, last exposure, alerts; then
    what was not judged and why.

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
    notes = [f"note: {status.experiment}: {note}" for status in fleet.experiments for note in status.notes]
    return "\n".join([head, *lines, *notes])


def fleet_json(fleet: FleetReport) -> dict[str, Any]:
    """One JSON object per experiment, keyed by its id (as text), most severe first."""
    return {str(status.experiment): status.to_dict() for status in fleet.experiments}


SUMMARY_HEADER = (
    "experiment",
    "status",
    "units",
    "split",
    "SRM evidence",
    "drop test",
    "last seen",
    "alerts",
)


def summary_row(status: ExperimentStatus) -> tuple[str, ...]:
    """One experiment's line of the summary table, as display strings."""
    seen = "-" if status.last_seen is None else status.last_seen.strftime("%Y-%m-%d %H:%M UTC")
    split = evidence = drop = "-"
    if status.report is not None:
        srm, sequential = status.report.cumulative_srm, status.report.sequential_srm
        total = float(sum(srm.observed_counts)) or 1.0
        split = " / ".join(
            f"{v} {n / total:.1%}" for v, n in zip(srm.variants, srm.observed_counts, strict=True)
        )
        evidence = (
            f"chi-square p = {srm.p_value:.3g}; sequential {'SRM' if sequential.srm_detected else 'ok'}"
        )
        drop = "DROP" if status.report.traffic_anomaly.anomaly_detected else "ok"
    return (
        str(status.experiment),
        status.status,
        f"{status.units:,}",
        split,
        evidence,
        drop,
        seen,
        ", ".join(status.alerts) or "-",
    )


def fleet_sections(fleet: FleetReport, config: FleetConfig) -> list[Section]:
    """The summary, then one section per tested experiment (in the summary's order)."""
    settings = {experiment.id: experiment for experiment in config.experiments}
    sections = [
        Section(
            "Experiments", (_lead(fleet), Table(SUMMARY_HEADER, tuple(map(summary_row, fleet.experiments))))
        )
    ]
    for status in fleet.experiments:
        if status.report is None:
            continue
        chosen = settings.get(status.experiment) or config.for_unlisted(status.experiment)
        ratios = None if chosen is None else chosen.design.expected_ratios
        window = 7 if chosen is None else chosen.settings.window
        png, note = (
            traffic_png(
                status.report.traffic,
                ratios,
                window=window,
                sequential_method=(chosen.settings if chosen else config.default_settings).sequential_method,
            )
            if ratios is not None
            else (None, "")
        )
        blocks = experiment_blocks(status.report, Chart(png, note))
        sections.append(Section(f"Experiment {status.experiment}", (*status.notes, *blocks)))
    if fleet.deliveries:
        sections.append(Section("Alert deliveries", delivery_blocks(fleet.deliveries)))
    return sections


def _lead(fleet: FleetReport) -> str:
    alerting = sum(1 for status in fleet.experiments if status.alerts)
    return (
        f"{len(fleet.experiments)} experiment(s) from {fleet.config_path}, {alerting} alerting; "
        f"{fleet.queries} quer{'y' if fleet.queries == 1 else 'ies'} sent. Most severe first."
    )


def _anchor(index: int) -> str:
    return f"experiment-{index}"


def render_fleet_html(fleet: FleetReport, config: FleetConfig, started: str) -> str:
    """The fleet report as one self-contained page; each experiment's name links to its section."""
    details = fleet_sections(fleet, config)[1:]
    anchors = {section.heading: _anchor(i) for i, section in enumerate(details, 1)}
    rows = []
    for row in map(summary_row, fleet.experiments):
        target = anchors.get(f"Experiment {row[0]}")
        name = f'<a href="#{target}">{html.escape(row[0])}</a>' if target else html.escape(row[0])
        cells = "".join(f'<td class="{_cell_class(cell)}">{html.escape(cell)}</td>' for cell in row[1:])
        rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in SUMMARY_HEADER)
    body = (
        f"<section>\n<h2>Experiments</h2>\n{html_block(_lead(fleet))}\n<table>\n<tr>{header}</tr>\n"
        + "\n".join(rows)
        + "\n</table>\n</section>\n"
        + "\n".join(html_section(section, anchors[section.heading]) for section in details)
    )
    return html_page(f"Fleet monitoring report: {Path(fleet.config_path).name}", started, body)


def _cell_class(cell: str) -> str:
    return (
        "ALERT" if cell in ("shutoff", "alert", "no traffic", "DROP") else "ok" if cell == "healthy" else ""
    )


def render_fleet_markdown(fleet: FleetReport, config: FleetConfig, started: str) -> str:
    """The fleet report as Markdown (charts are in the HTML page)."""
    lines = [f"# {markdown_text(f'Fleet monitoring report: {Path(fleet.config_path).name}')}", ""]
    lines.append(f"Run at {started} (UTC) by xpyrment-sql.")
    for section in fleet_sections(fleet, config):
        lines += ["", f"## {markdown_text(section.heading)}"]
        for block in section.blocks:
            lines += ["", *markdown_block(block, None)]
    return "\n".join(lines) + "\n"


def write_fleet_report(
    fleet: FleetReport, config: FleetConfig, path: str | Path, chosen: str | None = None
) -> Path:
    """Write the fleet report to ``path`` as HTML or Markdown (``chosen``, else by the suffix)."""
    target = Path(path)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if report_format(target, chosen) == "html":
        target.write_text(render_fleet_html(fleet, config, started), encoding="utf-8")
    else:
        target.write_text(render_fleet_markdown(fleet, config, started), encoding="utf-8")
    return target
