"""The shareable report as a document: one self-contained HTML page, or Markdown for pasting into a ticket.

Both render the sections of :mod:`xpyrment_sql.reporting.sections`; :func:`write_report` picks the format
from the file's suffix (or the caller's choice). The HTML file embeds its chart as a base64 PNG and its
styles inline, and its Content-Security-Policy forbids every fetch except ``data:`` images, so opening
it sends no request anywhere. The Markdown file references the chart as a PNG written next to it
(``<name>-traffic.png``), because tickets take images as attachments, not inline data.

Names come from the data and the user (variant values, column names, the source's name) and may hold
markup: every one is escaped, as HTML text in the page, and in Markdown with backslash escapes, newlines
folded into spaces, and code fences longer than any run of backticks inside them.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from xpyrment_sql.errors import ParameterError
from xpyrment_sql.reporting.records import MonitoringReport
from xpyrment_sql.reporting.sections import Block, Chart, Code, Section, Table, report_sections

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #d5d9e0; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d5d9e0; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f1f3f6; } td.ALERT { color: #fff; background: #c62828; font-weight: 600; }
td.ok { color: #1b5e20; background: #e8f5e9; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #d5d9e0; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.scroll { max-height: 28rem; overflow-y: auto; display: inline-block; }
img { max-width: 100%; border: 1px solid #d5d9e0; }
"""
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def report_format(path: str | Path, chosen: str | None = None) -> str:
    """``"html"`` or ``"md"``: ``chosen`` if given, else what ``path``'s suffix names."""
    if chosen is not None:
        if chosen not in ("html", "md"):
            raise ParameterError(f"format={chosen!r} must be 'html' or 'md'")
        return chosen
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise ParameterError(f"path={str(path)!r} must end in .html or .md (or give format='html' or 'md')")
    return found


def write_report(run: MonitoringReport, path: str | Path, chosen: str | None = None) -> Path:
    """Write ``run`` to ``path`` as HTML or Markdown (``chosen``, else by the suffix).

    Markdown also writes the chart next to the file as ``<stem>-traffic.png``.
    """
    target = Path(path)
    if report_format(target, chosen) == "html":
        target.write_text(render_html(run), encoding="utf-8")
        return target
    chart_file = None
    if run.chart_png is not None:
        chart_file = f"{target.stem}-traffic.png"
        (target.parent / chart_file).write_bytes(run.chart_png)
    target.write_text(render_markdown(run, chart_file), encoding="utf-8")
    return target


def _title(run: MonitoringReport) -> str:
    return f"Experiment monitoring report: {run.source_name}"


def render_html(run: MonitoringReport) -> str:
    """One self-contained HTML page: inline styles, the chart as a data URI, nothing fetched."""
    body = "\n".join(html_section(section) for section in report_sections(run))
    return html_page(_title(run), run.started_at.isoformat(timespec="seconds"), body)


def html_page(title: str, started: str, body: str) -> str:
    """A self-contained page around ``body`` (already HTML): the policy that forbids every fetch but
    ``data:`` images, inline styles, and the title and run time (``started``, UTC) on top."""
    heading, stamp = html.escape(title), html.escape(started)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{heading}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{heading}</h1>\n<p>Run at {stamp} (UTC) by xpyrment-sql.</p>\n{body}\n</body>\n</html>\n"
    )


def html_section(section: Section, anchor: str | None = None) -> str:
    """One section as HTML; ``anchor`` becomes its ``id`` (a link target)."""
    blocks = "\n".join(html_block(block) for block in section.blocks)
    target = f' id="{html.escape(anchor)}"' if anchor else ""
    return f"<section{target}>\n<h2>{html.escape(section.heading)}</h2>\n{blocks}\n</section>"


def html_block(block: Block) -> str:
    if isinstance(block, Table):
        header = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
        rows = "".join("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>\n" for row in block.rows)
        return f'<div class="scroll"><table>\n<tr>{header}</tr>\n{rows}</table></div>'
    if isinstance(block, Code):
        return (
            f"<details><summary>{html.escape(block.title)}</summary>"
            f"<pre><code>{html.escape(block.text)}</code></pre></details>"
        )
    if isinstance(block, Chart):
        if block.png is None:
            return f"<p>{html.escape(block.note)}</p>"
        data = base64.b64encode(block.png).decode("ascii")
        return f'<img alt="traffic chart" src="data:image/png;base64,{data}">'
    return f"<p>{html.escape(block)}</p>"


def _html_cell(cell: str) -> str:
    status = f' class="{cell}"' if cell in ("ALERT", "ok") else ""
    return f"<td{status}>{html.escape(cell)}</td>"


def render_markdown(run: MonitoringReport, chart_file: str | None = None) -> str:
    """The report as Markdown; the chart is a link to ``chart_file`` (a PNG beside it) if given."""
    stamp = run.started_at.isoformat(timespec="seconds")
    lines = [f"# {markdown_text(_title(run))}", "", f"Run at {stamp} (UTC) by xpyrment-sql."]
    for section in report_sections(run):
        lines += ["", f"## {markdown_text(section.heading)}"]
        for block in section.blocks:
            lines += ["", *markdown_block(block, chart_file)]
    return "\n".join(lines) + "\n"


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|#~&])")
_LIST_MARKER = re.compile(r"^(\d*)([-+.)])(?=\s|$)")


def markdown_text(text: str) -> str:
    """``text`` as one line of literal Markdown: markup characters backslash-escaped, newlines folded.

    A leading ``-``, ``+`` or ``1.`` is escaped too, so a name cannot start a list.
    """
    flat = " ".join(str(text).split("\n")).replace("\r", " ").strip()
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", flat)
    return _LIST_MARKER.sub(r"\1\\\2", escaped)


def markdown_block(block: Block, chart_file: str | None) -> list[str]:
    if isinstance(block, Table):
        return [_markdown_row(block.header), "|" + "---|" * len(block.header)] + [
            _markdown_row(row) for row in block.rows
        ]
    if isinstance(block, Code):
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", block.text)), default=0))
        return [f"**{markdown_text(block.title)}**", "", f"{fence}sql", block.text.rstrip(), fence]
    if isinstance(block, Chart):
        if block.png is None:
            return [markdown_text(block.note)]
        if chart_file is None:
            return ["The chart is in the HTML report."]
        return [f"![traffic chart]({chart_file})"]
    return [markdown_text(block)]


def _markdown_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(markdown_text(cell) for cell in cells) + " |"
