"""The shareable report: its sections, HTML and Markdown, hostile names escaped, the bin in progress marked,
and the HTML opened in headless Chromium."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import matplotlib.image
import pandas as pd
import pytest
from browser import open_in_chromium

import xpyrment_sql as xs
from xpyrment_sql.cli.run import run_report
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.reporting import text as report
from xpyrment_sql.reporting.documents import render_html, render_markdown, write_report
from xpyrment_sql.reporting.sections import report_sections
from xpyrment_sql.settings import CheckSettings, Design

from conftest import latency_guardrails, make_log

HEADINGS = [
    "Verdict", "Checks", "Traffic chart", "Traffic", "Sample ratio mismatch", "Guardrails",
    "SQL that ran", "Run",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(broken_log):
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    return run_report(
        monitor,
        Design([1, 1]),
        CheckSettings(freq="h"),
        source_name="broken.parquet",
        guardrails=latency_guardrails(),
    )


class _Outline(HTMLParser):
    """Headings and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.urls, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self._in = tag if tag in ("h1", "h2") else None
        self.urls += [value for name, value in attrs if name in ("src", "href", "action", "data")]

    def handle_data(self, data):
        if self._in == "h2":
            self.headings.append(data)

    def handle_endtag(self, tag):
        self._in = None


def test_the_html_holds_every_section_and_references_nothing_outside(run):
    page = render_html(run)
    outline = _Outline()
    outline.feed(page)
    assert outline.headings == HEADINGS
    assert outline.urls, "the chart is embedded"
    assert all(url.startswith("data:image/png;base64,") for url in outline.urls)
    assert "default-src 'none'" in page
    assert "SRM_SHUTOFF_TRIGGERED" in page
    assert "latency" in page, "the guardrail is reported"
    assert run.started_at.isoformat(timespec="seconds") in page


def test_the_sql_section_names_each_statement_by_its_check(run):
    sections = {section.heading: section for section in report_sections(run)}
    titles = [block.title for block in sections["SQL that ran"].blocks]
    assert titles == [
        "1. metric moments (guardrails)",
        "2. traffic matrix and multiple exposure (anomaly, SRM tests)",
    ]
    assert sections["SQL that ran"].blocks[1].text == run.statements[1].sql


def test_srm_numbers_match_the_raw_log(run, broken_log):
    units = pd.read_parquet(broken_log).groupby("variant").unit_id.nunique()
    page = render_html(run)
    for variant, n in units.items():
        share = n / units.sum()
        assert f"<td>{variant}</td><td>{n:,}</td><td>{share:.4%}</td><td>50.0000%</td>" in page


def test_markdown_writes_the_chart_next_to_it(run, tmp_path):
    path = write_report(run, tmp_path / "ticket.md")
    text = path.read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.MULTILINE) == HEADINGS
    assert "![traffic chart](ticket-traffic.png)" in text
    assert (tmp_path / "ticket-traffic.png").read_bytes().startswith(b"\x89PNG")
    assert "| traffic anomaly | ok |" in text
    assert "```sql" in text


@pytest.mark.parametrize(
    ("path", "chosen", "words"),
    [("report.pdf", None, "report.pdf' must end in .html or .md"), ("r.html", "pdf", "format='pdf'")],
)
def test_unknown_report_formats_are_rejected(run, tmp_path, path, chosen, words):
    with pytest.raises(ParameterError) as info:
        write_report(run, tmp_path / path, chosen)
    assert words in str(info.value)


HOSTILE_SOURCE = "<script>alert('source')</script> | `tick` *star*\n# heading"
HOSTILE_VARIANTS = ("ctl<script>alert('v')</script>", "tr|`eat`\nment")
HOSTILE_VARIANT_COL = "arm```<b>|"
HOSTILE_SEGMENT_COL = "plat<i>form"
HOSTILE_METRIC = "<img src=x onerror=alert(1)>|lat"
UNTIL = pd.Timestamp("2026-01-09 12:30:00")


@pytest.fixture(scope="module")
def hostile_run():
    """A log whose names hold markup, evaluated half-way through the 12:00 bin (so it is in progress)."""
    log = make_log(units=4000, rows=40_000, days=5, variants=HOSTILE_VARIANTS)
    log[HOSTILE_SEGMENT_COL] = pd.Series(["<u>ios</u>", "and|roid\n- x"]).iloc[log.unit_id % 2].to_numpy()
    log["value"] = (log.unit_id % 11).astype(float)
    log = log.rename(columns={"variant": HOSTILE_VARIANT_COL})
    monitor = xs.LiveMonitor(log, time_col="ts", variant_col=HOSTILE_VARIANT_COL, until=UNTIL)
    guardrail = xs.GuardrailMetric(xs.MeanMetric(HOSTILE_METRIC, "value"), 0.02)
    return run_report(
        monitor,
        Design([1, 1]),
        CheckSettings(freq="h"),
        source_name=HOSTILE_SOURCE,
        guardrails=[guardrail],
        segment_cols=[HOSTILE_SEGMENT_COL],
    )


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_hostile_names_are_escaped_in_html(hostile_run):
    page = render_html(hostile_run)
    tags = _Tags()
    tags.feed(page)
    assert set(tags.tags) <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "section", "div", "table", "tr",
        "th", "td", "details", "summary", "pre", "code", "img",
    }, "no element comes from a name"  # fmt: skip
    assert tags.tags.count("img") == 1, "the chart, not the metric's name"
    assert f"<h1>Experiment monitoring report: {html.escape(HOSTILE_SOURCE)}</h1>" in page
    for name in (*HOSTILE_VARIANTS, HOSTILE_METRIC, "<u>ios</u>"):
        assert html.escape(name) in page


def _outside_code(markdown):
    """The Markdown's lines outside fenced code blocks (a fence closes only with the same fence)."""
    lines, fence = [], None
    for line in markdown.splitlines():
        opening = re.match(r"^(`{3,})", line)
        if fence is None and opening:
            fence = opening[1]
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            lines.append(line)
    assert fence is None, "every code block is closed"
    return lines


def test_hostile_names_are_escaped_in_markdown(hostile_run):
    text = render_markdown(hostile_run)
    assert "\n````sql\n" in text, "the fence is longer than the ``` in the variant column's name"
    lines = _outside_code(text)
    assert lines[0].startswith("# Experiment monitoring report: \\<script\\>"), "one title line"
    headings = [line for line in lines if line.startswith("#")]
    assert headings[1:] == [f"## {h}" for h in HEADINGS[:5]] + [
        "## SRM by segment", "## Guardrails", "## SQL that ran", "## Run"
    ], "no heading comes from a name"  # fmt: skip
    prose = "\n".join(re.sub(r"^\*\*(.*)\*\*$", r"\1", line) for line in lines)  # SQL titles are bold
    assert not re.search(r"(?<!\\)[<>`*]", prose), "markup characters outside code are escaped"
    assert not re.search(r"^\s*[-+] ", prose, flags=re.MULTILINE), "no list starts from a name"
    for table in re.findall(r"(?:^\|.*\|$\n?)+", prose, flags=re.MULTILINE):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, f"every row of the table has as many cells as its header: {table}"


def test_the_verdict_leads_with_the_judged_bin_and_the_bin_in_progress(hostile_run):
    sections = {section.heading: section for section in report_sections(hostile_run)}
    assert report_sections(hostile_run)[0].heading == "Verdict"
    verdict = sections["Verdict"].blocks
    assert verdict[0] == report.outcome(hostile_run.telemetry)
    assert verdict[1] == "Judged bin: 2026-01-09 11:00:00, the latest complete h bin."
    assert verdict[2] == (
        "The last bin, 2026-01-09 12:00:00, is unfinished (in progress at 2026-01-09 12:30:00+00:00): "
        "shown, never judged."
    )
    assert verdict[3] == "Unit column: unit_id (the column named unit_id)."


def test_traffic_is_newest_first_with_the_bin_in_progress_marked(hostile_run):
    sections = {section.heading: section for section in report_sections(hostile_run)}
    table = next(b for b in sections["Traffic"].blocks if not isinstance(b, str))
    labels = [row[0] for row in table.rows]
    assert labels[0] == "2026-01-09 12:00:00 (in progress)"
    starts = [pd.Timestamp(label.removesuffix(" (in progress)")) for label in labels]
    assert starts == sorted(starts, reverse=True)
    assert sum("in progress" in label for label in labels) == 1


def test_counts_have_thousands_separators_and_expected_counts_are_integers(hostile_run):
    sections = {section.heading: section for section in report_sections(hostile_run)}
    table = next(b for b in sections["Sample ratio mismatch"].blocks if not isinstance(b, str))
    assert table.header[1] == "units"
    for row in table.rows:
        assert re.fullmatch(r"\d{1,3}(,\d{3})+", row[1]), row
        assert re.fullmatch(r"\d{1,3}(,\d{3})+", row[4]), f"expected units as an integer: {row}"
        assert re.fullmatch(r"[+-]\d{1,3}(,\d{3})*", row[5]), f"excess as an integer: {row}"
    summary = sections["Verdict"].blocks[-1]
    assert re.match(r"\d,\d{3} distinct units \(none seen under more than one variant\) in 2 ", summary)


def test_chromium_renders_the_report_and_no_request_leaves_the_machine(run, tmp_path):
    canary = tmp_path / "canary.html"
    canary.write_text(
        '<html><head><link rel="stylesheet" href="https://fonts.example.invalid/a.css"></head>'
        '<body><h2>canary</h2><img src="http://127.0.0.1:9/pixel.png"></body></html>'
    )
    _, _, canary_requests = open_in_chromium(canary, tmp_path, "canary")
    assert canary_requests == {"https://fonts.example.invalid/a.css", "http://127.0.0.1:9/pixel.png"}, (
        "the net log sees a page's requests"
    )

    page = write_report(run, tmp_path / "report.html")
    dom, shot, requested = open_in_chromium(page, tmp_path, "report")
    assert requested == set(), "opening the report requested nothing"
    outline = _Outline()
    outline.feed(dom)
    assert outline.headings == HEADINGS
    image = matplotlib.image.imread(shot)
    assert image.shape[:2] == (2400, 1200)
    assert image[..., :3].std() > 0.05, "the screenshot shows a rendered page, not a blank one"
