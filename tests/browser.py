"""Headless Chromium for the report tests: a page's DOM, a screenshot, and every URL it requested."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run scripts/install_os_packages.sh (as root) first")
    return found


def open_in_chromium(page, tmp_path, name):
    """Load ``page`` in headless Chromium: its DOM, a screenshot, and the URLs the page requested."""
    net_log, shot = tmp_path / f"{name}-net.json", tmp_path / f"{name}.png"
    flags = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / (name + '-profile')}", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        '--host-resolver-rules=MAP * ~NOTFOUND', f"--log-net-log={net_log}", "--window-size=1200,2400",
    ]  # fmt: skip
    url = page.as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True)
    requested = _page_requests(net_log)
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    return dom.stdout, shot, requested | _page_requests(net_log)


BROWSER_INTERNAL = "not an origin"
"""The net log's initiator of Chromium's own jobs (update checks and the like), not a page's."""


def _page_requests(net_log) -> set[str]:
    """URLs requested on behalf of a page (browser-internal jobs have no origin and are left out)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return {
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and event.get("params", {}).get("initiator", BROWSER_INTERNAL) != BROWSER_INTERNAL
    }
