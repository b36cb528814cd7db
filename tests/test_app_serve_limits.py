"""The application services' routes (/v1/chat, /v1/ingest, /v1/monitor/summary, /metrics) pass the same gates
as `graftkit serve`'s: API keys (401/403), per-key rate limits and failed-authentication limiting (429 naming
the limit), the body-size limit (413) and the same error bodies. Fake applications keep the test fast."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from graftkit.apps.monitor.config import SourceConfig
from graftkit.serve.apps import create_assistant_app, create_monitor_app
from graftkit.serve.settings import ServeConfig

KEY = "app-limits-test-key-0123456789"
AUTH = {"X-API-Key": KEY}


class _Metrics:
    def render(self):
        return b"fake_app_metric 1.0\n", "text/plain; version=0.0.4; charset=utf-8"


class FakeAssistant:
    metrics = _Metrics()

    def __init__(self):
        self.calls = 0

    def reply(self, message, session_id=None, owner=None):
        self.calls += 1
        return {"session_id": session_id or "s1", "turn": self.calls, "reply": "ok", "intent": "card",
                "closest_intent": "card", "confidence": 0.9, "similarity": None, "followup": False,
                "handoff": False, "reason": None, "answers": []}

    def close(self):
        pass


class FakeMonitor:
    metrics = _Metrics()
    cfg = type("Cfg", (), {"fields": SourceConfig()})()

    def ingest(self, items):
        return {"ingested": len(items), "duplicates": 0, "events": []}

    def skip(self, skip):
        pass

    def close(self):
        pass


def _settings(**kw) -> ServeConfig:
    return ServeConfig(api_keys=[KEY], log_level="warning", **kw)


def _chat(client, headers=None, message="hello"):
    return client.post("/v1/chat", json={"message": message}, headers=headers or {})


def _ingest(client, headers=None, text="Shares fall"):
    return client.post("/v1/ingest", json={"items": [{"id": "a", "time": 1.0, "text": text}]}, headers=headers or {})


APPS = {"chat": (lambda s: create_assistant_app(None, s, build=FakeAssistant), _chat),
        "ingest": (lambda s: create_monitor_app(None, s, build=FakeMonitor), _ingest)}


@pytest.mark.parametrize("route", sorted(APPS))
def test_missing_and_wrong_keys(route):
    make, send = APPS[route]
    with TestClient(make(_settings())) as client:
        missing = send(client)
        assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
        assert missing.headers["www-authenticate"] == "Bearer"
        assert send(client, {"X-API-Key": "wrong"}).status_code == 403
        assert send(client, {"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/metrics").status_code == 401  # keyed, as on `graftkit serve`


@pytest.mark.parametrize("route", sorted(APPS))
def test_rate_limit_per_key_names_the_limit(route):
    make, send = APPS[route]
    with TestClient(make(_settings(rate_limit_per_minute=2))) as client:
        assert [send(client, AUTH).status_code for _ in range(2)] == [200, 200]
        over = send(client, AUTH)
        assert over.status_code == 429
        body = over.json()
        assert body["limit"] == {"name": "rate_limit_per_minute", "value": 2}
        assert "rate_limit_per_minute exceeded" in body["error"] and body["request_id"]
        assert int(over.headers["retry-after"]) >= 1


@pytest.mark.parametrize("route", sorted(APPS))
def test_failed_authentications_block_the_address(route):
    make, send = APPS[route]
    with TestClient(make(_settings(auth_failures_per_minute=2))) as client:
        assert [send(client, {"X-API-Key": f"guess{i}"}).status_code for i in range(2)] == [403, 403]
        blocked = send(client, AUTH)  # even the right key, until the window moves on
        assert blocked.status_code == 429 and blocked.json()["limit"]["name"] == "auth_failures_per_minute"


@pytest.mark.parametrize("route", sorted(APPS))
def test_oversized_body_is_413(route):
    make, send = APPS[route]
    with TestClient(make(_settings(max_body_bytes=1024))) as client:
        big = send(client, AUTH, "x" * 1500)
        assert big.status_code == 413
        assert big.json()["limit"] == {"name": "max_body_bytes", "value": 1024}
        assert send(client, AUTH, "x" * 100).status_code == 200


def test_metrics_with_a_key_or_public():
    with TestClient(create_monitor_app(None, _settings(), build=FakeMonitor)) as client:
        assert _ingest(client, AUTH).status_code == 200
        text = client.get("/metrics", headers=AUTH).text
        assert "fake_app_metric 1.0" in text
        assert 'graftkit_requests_total{path="/v1/ingest",status="200"} 1.0' in text
    with TestClient(create_monitor_app(None, _settings(public_metrics=True), build=FakeMonitor)) as client:
        assert client.get("/metrics").status_code == 200


def test_summary_is_keyed_and_rate_limited():
    with TestClient(create_monitor_app(None, _settings(rate_limit_per_minute=1), build=FakeMonitor)) as client:
        assert client.get("/v1/monitor/summary").status_code == 401
        assert _ingest(client, AUTH).status_code == 200
        assert client.get("/v1/monitor/summary", headers=AUTH).status_code == 429
