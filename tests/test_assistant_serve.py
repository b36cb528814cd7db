"""The assistant service: POST /v1/chat (a request without a session id starts one), history, and the chat page."""
from __future__ import annotations

import pytest
from assistant_helpers import (
    assistant_tree,
    faq_answers,
    intent_run,
    known_texts,
    retrieval_run,
)
from browser_helpers import browser_factory  # noqa: F401 (fixture)
from deploy_helpers import serving
from fastapi.testclient import TestClient

from graftkit.apps.assistant.config import assistant_config_from_dict
from graftkit.serve.apps import create_assistant_app
from graftkit.serve.settings import ServeConfig

KEY = "assistant-test-key-0123456789"
OTHER_KEY = "assistant-other-key-9876543210"


@pytest.fixture(scope="module")
def app_factory(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.getbasetemp() / "assistant"
    runs = intent_run(base, tiny_model_dir), retrieval_run(base, tiny_model_dir)

    def make(tmp_path, settings: dict | None = None, **extra):
        extra.setdefault("thresholds", {"intent_confidence": 0.0})
        cfg = assistant_config_from_dict(assistant_tree(*runs, f"sqlite:///{tmp_path / 'a.db'}", **extra))
        return create_assistant_app(cfg, ServeConfig(**{"api_keys": [KEY], "log_level": "warning", **(settings or {})}))
    make.known = known_texts(runs[0], 2)
    return make


def test_chat_sessions_over_http(app_factory, tmp_path):
    auth = {"X-API-Key": KEY}
    with TestClient(app_factory(tmp_path)) as client:
        assert client.post("/v1/chat", json={"message": "i lost my card"}).status_code == 401
        first = client.post("/v1/chat", json={"message": "i lost my card"}, headers=auth).json()
        assert first["decided_by"] == "confidence" and first["out_of_scope_score"] is None  # a run without detector
        assert first["reward"] is None  # no reward_run: the field is there, null
        other = client.post("/v1/chat", json={"message": "i lost my card"}, headers=auth).json()
        assert first["session_id"] != other["session_id"] and first["turn"] == other["turn"] == 1
        nxt = client.post("/v1/chat", json={"message": "reset my card pin", "session_id": first["session_id"]},
                          headers=auth).json()
        assert nxt["session_id"] == first["session_id"] and nxt["turn"] == 2
        hist = client.get(f"/v1/chat/{first['session_id']}", headers=auth).json()
        assert [t["message"] for t in hist["turns"]] == ["i lost my card", "reset my card pin"]
        assert client.get("/v1/chat/nope", headers=auth).status_code == 404
        assert client.post("/v1/chat", json={"message": ""}, headers=auth).status_code == 422
        assert "graftkit_assistant_turns_total 3.0" in client.get("/metrics", headers=auth).text


def test_a_session_is_the_starting_keys_alone(app_factory, tmp_path):
    """Another key (or anonymous caller) reading or appending to a session gets the 404 of an unknown id."""
    mine, other = {"X-API-Key": KEY}, {"X-API-Key": OTHER_KEY}
    app = app_factory(tmp_path, settings={"api_keys": [KEY, OTHER_KEY], "allow_anonymous": True})
    with TestClient(app) as client:
        sid = client.post("/v1/chat", json={"message": "i lost my card"}, headers=mine).json()["session_id"]
        unknown = client.get("/v1/chat/no-such-id", headers=mine)
        for caller in (other, {}):  # {}: anonymous
            read = client.get(f"/v1/chat/{sid}", headers=caller)
            append = client.post("/v1/chat", json={"message": "reset my card pin", "session_id": sid}, headers=caller)
            assert read.status_code == append.status_code == 404, (read.text, append.text)
            assert read.json()["error"] == append.json()["error"] == f"no conversation '{sid}'"
        assert unknown.json()["error"] == "no conversation 'no-such-id'"
        assert [t["turn"] for t in client.get(f"/v1/chat/{sid}", headers=mine).json()["turns"]] == [1]
        anon = client.post("/v1/chat", json={"message": "i lost my card"}).json()["session_id"]  # bound to anonymous
        assert client.post("/v1/chat", json={"message": "and that?", "session_id": anon}).json()["turn"] == 2
        assert client.get(f"/v1/chat/{anon}", headers=mine).status_code == 404


@pytest.mark.browser
def test_chat_page_answers_and_hands_off(app_factory, tmp_path, browser_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (text_a, label_a), (text_b, label_b) = app_factory.known
    with serving(app_factory(tmp_path, handoff_intents=[label_b])) as url:
        page = browser_factory()
        page.get(url + "/chat")
        page.find_element(By.ID, "key").send_keys(KEY)
        wait = WebDriverWait(page, 30)
        for n, text in enumerate([text_a, text_b], 1):
            page.find_element(By.ID, "msg").send_keys(text)
            page.find_element(By.ID, "send").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f".bot[data-turn='{n}']"))
        first, second = page.find_elements(By.CSS_SELECTOR, ".bot")
        assert first.get_attribute("data-intent") == label_a and any(a in first.text for a in faq_answers(label_a))
        assert "handoff" in second.get_attribute("class") and "always handed" in second.text
        assert page.find_element(By.ID, "session").text.startswith("conversation ")
