"""With a state file, alerts behave like a pager: sent once at onset, repeated after ``renotify``,
resolved once when their condition clears, retried by the next run when no handler took them; the
delivery history lives in the state file. Every delivery goes to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main

from conftest import make_log

RATIOS = {"control": 1, "treatment": 1}
MULTIPLE = "MULTIPLE_EXPOSURE"


def crossed_log(clean_units: int, crossed: int) -> pd.DataFrame:
    """A balanced log where ``crossed`` of the units are also seen in the other arm."""
    log = make_log(units=clean_units, rows=clean_units * 4, days=3, seed=3)
    crossers = log.drop_duplicates("unit_id").head(crossed)
    flipped = crossers.assign(variant=np.where(crossers.variant == "control", "treatment", "control"))
    return pd.concat([log, flipped], ignore_index=True)


def sent(webhook, kind: str) -> list[dict]:
    return [body for _, body in webhook.bodies if body["alert_type"] == kind]


def monitor(log, state, webhook, **options) -> xs.LiveMonitor:
    dispatcher = xs.WebhookAlertDispatcher(attempts=1)
    dispatcher.register_custom(webhook.url)
    return xs.LiveMonitor(log, time_col="ts", dispatcher=dispatcher, state=state, **options)


def test_an_alert_is_sent_once_then_resolved_once(tmp_path, webhook):
    state = tmp_path / "state.duckdb"
    crossed = crossed_log(400, crossed=20)
    first = monitor(crossed, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert MULTIPLE in first.alerts_triggered
    assert len(sent(webhook, MULTIPLE)) == 1
    second = monitor(crossed, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert MULTIPLE in second.alerts_triggered, "the condition still holds"
    assert len(sent(webhook, MULTIPLE)) == 1, "and nobody is paged again"
    later = crossed.ts.max() + pd.Timedelta(hours=1)
    fresh = make_log(units=4000, rows=8000, days=1, seed=9)
    fresh = fresh.assign(unit_id=fresh.unit_id + 10**6, ts=later + (fresh.ts - fresh.ts.min()))
    grown = pd.concat([crossed, fresh], ignore_index=True)
    third = monitor(grown, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert MULTIPLE not in third.alerts_triggered, "20 of 4,400 units is below the 1% allowed"
    resolves = [body for body in sent(webhook, MULTIPLE) if body.get("action") == "resolve"]
    assert len(resolves) == 1
    assert resolves[0]["message"].startswith("Resolved: ")
    assert resolves[0]["key"] == "check=MULTIPLE_EXPOSURE"
    monitor(grown, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert len(sent(webhook, MULTIPLE)) == 2, "one trigger and one resolve, whatever more runs see"
    history = third.state.deliveries
    assert [(d.alert_type, d.action, d.outcome) for d in history if d.alert_type == MULTIPLE] == [
        (MULTIPLE, "resolve", "delivered"),
        (MULTIPLE, "trigger", "delivered"),
    ], "newest first"
    assert all(webhook.url not in json.dumps(d.to_dict()) for d in history), "never the URL"


def test_renotify_repeats_an_alert_that_stays_active(tmp_path, webhook):
    state = tmp_path / "state.duckdb"
    crossed = crossed_log(400, crossed=20)
    for _ in range(2):
        monitor(crossed, state, webhook, renotify="1us").run_telemetry_checks(RATIOS, freq="h")
    assert len(sent(webhook, MULTIPLE)) == 2


def test_an_alert_no_handler_took_is_sent_again_by_the_next_run(tmp_path, webhook):
    state = tmp_path / "state.duckdb"
    crossed = crossed_log(400, crossed=20)
    for _ in range(20):
        webhook.queue(500)
    failed = monitor(crossed, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert not any(outcome.ok for outcome in failed.dispatches)
    assert failed.state.deliveries[0].outcome == "failed"
    assert failed.state.deliveries[0].status == 500
    webhook.bodies.clear()
    webhook.answers.clear()
    monitor(crossed, state, webhook).run_telemetry_checks(RATIOS, freq="h")
    assert len(sent(webhook, MULTIPLE)) == 1, "the page that failed is sent by the next run"


FLEET = """
[defaults]
freq = "h"

[[experiment]]
id = "checkout"
ratios = { control = 1, treatment = 1 }
webhook = "{url}/checkout"

[[experiment]]
id = "launching"
ratios = { control = 1, treatment = 1 }
webhook = "{url}/launching"
"""


def test_a_fleet_pages_each_experiment_to_its_route_and_resolves_no_traffic(tmp_path, webhook, capsys):
    """``launching`` has no rows: NO_TRAFFIC to its route once; when its rows arrive, one resolve;
    the fleet report lists the deliveries."""
    config, state, data = tmp_path / "fleet.toml", tmp_path / "fleet.duckdb", tmp_path / "log.parquet"
    config.write_text(FLEET.replace("{url}", webhook.url))
    checkout = make_log(units=600, rows=3000, days=3, seed=1).assign(experiment="checkout")
    arguments = ["check-all", str(data), "--time-col", "ts", "--experiment-col", "experiment",
                 "--config", str(config), "--state", str(state), "--json"]  # fmt: skip
    checkout.to_parquet(data)
    for _ in range(2):
        main(arguments)
        capsys.readouterr()
    received = [(path, body["alert_type"], body.get("action")) for path, body in webhook.bodies]
    assert received == [("/launching", "NO_TRAFFIC", None)]
    launching = make_log(units=600, rows=3000, days=3, seed=2).assign(experiment="launching")
    pd.concat([checkout, launching], ignore_index=True).to_parquet(data)
    main(arguments)
    printed = json.loads(capsys.readouterr().out)
    assert printed["launching"]["status"] == "healthy"
    received = [(path, body["alert_type"], body.get("action")) for path, body in webhook.bodies]
    assert received == [("/launching", "NO_TRAFFIC", None), ("/launching", "NO_TRAFFIC", "resolve")]
    assert printed["launching"]["dispatches"][0]["deliveries"][0]["action"] == "resolve"
    main([*arguments, "--report", str(tmp_path / "fleet.html")])
    html = (tmp_path / "fleet.html").read_text()
    assert "Alert deliveries" in html
    assert "experiment=launching;check=NO_TRAFFIC" in html


def test_the_report_shows_the_delivery_history_without_the_url(tmp_path, webhook, capsys):
    data, state, page = tmp_path / "log.parquet", tmp_path / "state.duckdb", tmp_path / "report.html"
    crossed_log(400, crossed=20).to_parquet(data)
    secret_path = "/services/T0/B0/secret-token"
    main(["report", str(data), "--time-col", "ts", "--ratios", "1,1", "--freq", "h", "--state", str(state),
          "--webhook", webhook.url + secret_path, "--out", str(page)])  # fmt: skip
    capsys.readouterr()
    html = page.read_text()
    assert "Alert deliveries" in html
    assert f"custom:{webhook.host}" in html
    assert "check=MULTIPLE_EXPOSURE" in html
    assert "secret-token" not in html
