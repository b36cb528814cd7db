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


@pytest.fixture(scope="module")
def app_factory(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.getbasetemp() / "assistant"
    runs = intent_run(base, tiny_model_dir), retrieval_run(base, tiny_model_dir)

    def make(tmp_path, **extra):
        extra.setdefault("thresholds", {"intent_confidence": 0.0})
        cfg = assistant_config_from_dict(assistant_tree(*runs, f"sqlite:///{tmp_path / 'a.db'}", **extra))
        return create_assistant_app(cfg, ServeConfig(api_keys=[KEY], log_level="warning"))
    make.known = known_texts(runs[0], 2)
    return make


def test_chat_sessions_over_http(app_factory, tmp_path):
    auth = {"X-API-Key": KEY}
    with TestClient(app_factory(tmp_path)) as client:
        assert client.post("/v1/chat", json={"message": "i lost my card"}).status_code == 401
        first = client.post("/v1/chat", json={"message": "i lost my card"}, headers=auth).json()
        assert first["decided_by"] == "confidence" and first["out_of_scope_score"] is None  # a run without detector
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
