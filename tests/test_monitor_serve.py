"""The monitor service: authenticated POST /v1/ingest, the summary JSON, /metrics, and the dashboard in Chromium."""
from __future__ import annotations

import pytest
from browser_helpers import browser_factory  # noqa: F401 (fixture)
from deploy_helpers import serving
from fastapi.testclient import TestClient
from monitor_helpers import NEGATIVE, NEUTRAL, monitor_tree, sentiment_run

from graftkit.apps.monitor.config import monitor_config_from_dict
from graftkit.serve.apps import create_monitor_app
from graftkit.serve.settings import ServeConfig

KEY = "monitor-test-key-0123456789"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    return sentiment_run(tmp_path_factory.getbasetemp() / "monitor", tiny_model_dir)


def _records(n_base: int = 300, n_surge: int = 40) -> list[dict]:
    recs = [{"id": f"b{i}", "time": 60.0 * i, "text": NEUTRAL[i % 4], "entity": "ACME"} for i in range(n_base)]
    recs += [{"id": f"s{i}", "time": 60.0 * n_base + 20 * i, "text": NEGATIVE[i % 4], "entity": "ACME"}
             for i in range(n_surge)]
    return recs


def _app(run, tmp_path):
    cfg = monitor_config_from_dict(monitor_tree(run, f"sqlite:///{tmp_path / 'm.db'}"))
    return create_monitor_app(cfg, ServeConfig(api_keys=[KEY], log_level="warning"))


def test_ingest_needs_a_key_and_is_idempotent(run, tmp_path):
    recs = _records()
    with TestClient(_app(run, tmp_path)) as client:
        assert client.post("/v1/ingest", json={"items": recs[:5]}).status_code == 401
        assert client.post("/v1/ingest", json={"items": recs[:5]}, headers={"X-API-Key": "nope"}).status_code == 403
        auth = {"X-API-Key": KEY}
        bad = [{"id": "x", "text": "no time"}, {"id": "y", "time": 1, "text": ""}]
        first = client.post("/v1/ingest", json={"items": recs[:200] + bad}, headers=auth).json()
        assert first["ingested"] == 200 and first["duplicates"] == 0
        assert [s["reason"].split(" (")[0] for s in first["skipped"]] == ["missing time", "empty text"]
        rest = client.post("/v1/ingest", json={"items": recs}, headers=auth).json()
        assert rest["ingested"] == len(recs) - 200 and rest["duplicates"] == 200
        assert [(a["event"], a["topic"]) for a in rest["alerts"]] == [("opened", "ACME")]
        summary = client.get("/v1/monitor/summary", params={"since": "30d"}, headers=auth).json()
        assert summary["topics"][0]["topic"] == "ACME" and summary["topics"][0]["items"] == len(recs)
        assert summary["alerts"][0]["state"] == "open" and summary["negative"][0]["entity"] == "ACME"
        assert client.get("/v1/monitor/summary", params={"since": "soon"}, headers=auth).status_code == 422
        metrics = client.get("/metrics", headers=auth).text
        assert f"graftkit_monitor_items_ingested_total {float(len(recs))}" in metrics
        assert 'graftkit_monitor_items_skipped_total{reason="missing time"} 1.0' in metrics
        assert 'graftkit_monitor_open_alerts{rule="neg-share-30m",topic="ACME"} 1.0' in metrics


def test_no_keys_is_refused(run, tmp_path):
    from graftkit.errors import ConfigError

    cfg = monitor_config_from_dict(monitor_tree(run, f"sqlite:///{tmp_path / 'm.db'}"))
    with pytest.raises(ConfigError, match="no API keys"):
        create_monitor_app(cfg, ServeConfig(log_level="warning"))


@pytest.mark.browser
def test_dashboard_draws_trends_alerts_and_refreshes(run, tmp_path, browser_factory):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    recs = _records()
    with serving(_app(run, tmp_path)) as url:
        httpx.post(url + "/v1/ingest", json={"items": recs}, headers={"X-API-Key": KEY}, timeout=60).raise_for_status()
        page = browser_factory()
        page.get(url + "/dashboard?refresh_s=1")
        page.find_element(By.ID, "key").send_keys(KEY)
        page.find_element(By.ID, "go").click()
        wait = WebDriverWait(page, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chart[data-topic='ACME'] .alert-mark"))
        row = page.find_element(By.CSS_SELECTOR, "#alerts tr.alert-row.open")
        assert "ACME" in row.text and "neg-share-30m" in row.text
        assert page.find_element(By.CSS_SELECTOR, "#negative tbody tr").text.startswith("1970-01-01")
        late = {"id": "late-news", "time": 60.0 * 400, "text": NEGATIVE[0] + " Again .", "entity": "ZETA"}
        httpx.post(url + "/v1/ingest", json={"items": [late]}, headers={"X-API-Key": KEY}, timeout=60)
        # no reload: the page's own refresh shows the new item
        wait.until(lambda d: "Again" in d.find_element(By.CSS_SELECTOR, "#negative tbody tr").text)
        assert int(page.find_element(By.ID, "updated").get_attribute("data-loads")) >= 2
