"""POST /v1/generate: whole and streamed (SSE) text, request batching, disconnect stops generation,
422 limits, /metrics counters, and the playground's generation mode in headless Chromium."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from conftest import run_config
from deploy_helpers import serving
from generation_helpers import PAIRS, pair_rows, tiny_decoder, write_jsonl

from graftkit.serve import ServeConfig, create_app

KEY = "generate-key-0123456789"
HEADERS = {"X-API-Key": KEY}


def _train(tmp, steps: int):
    from graftkit.train.trainer import train

    path = write_jsonl(tmp / "pairs.jsonl", pair_rows())
    cfg = run_config(tmp, tiny_decoder(tmp / "base"), path,
                     data={"train": str(path), "validation": str(path), "test": str(path), "max_length": 32},
                     task={"type": "causal_lm", "generation": {"max_new_tokens": 12, "max_new_tokens_limit": 64},
                           "eval_samples": 0},
                     train={"max_steps": steps, "batch_size": 4, "learning_rate": 3e-3, "warmup": 0},
                     eval={"plots": False, "save_predictions": False})
    return train(cfg, log=lambda m: None).path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("gen-serve"), 150)


def _events(lines) -> list[tuple[str, str]]:
    """(event, data) pairs of an SSE stream."""
    out, event = [], None
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event:
            out.append((event, line.split(":", 1)[1].strip()))
    return out


def _metric(text: str, name: str) -> float:
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(name + " ") or
               x.startswith(name + "{"))


def test_generate_whole_and_streamed_in_order(run):
    from fastapi.testclient import TestClient

    with TestClient(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as client:
        body = client.post("/v1/generate", json={"prompt": PAIRS[0][0]}, headers=HEADERS).json()
        assert body["generated"] == PAIRS[0][1] and body["tokens"] >= 4
        with client.stream("POST", "/v1/generate", json={"prompt": PAIRS[1][0], "stream": True},
                           headers=HEADERS) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = _events(r.iter_lines())
        tokens = [json.loads(d) for e, d in events if e == "token"]
        assert len(tokens) >= 4 and "".join(tokens).strip() == PAIRS[1][1]  # one decoded token per event, in order
        assert events[-1][0] == "done" and json.loads(events[-1][1])["generated"] == PAIRS[1][1]
        metrics = client.get("/metrics", headers=HEADERS).text
        assert _metric(metrics, "graftkit_generated_tokens_total") >= body["tokens"] + len(tokens)
        assert _metric(metrics, "graftkit_time_to_first_token_seconds_count") >= 1


def test_limits_are_422s_that_say_so(run):
    from fastapi.testclient import TestClient

    with TestClient(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as client:
        post = lambda body, **kw: client.post("/v1/generate", json=body, headers=HEADERS, **kw)  # noqa: E731
        r = post({"prompt": "red apple", "max_new_tokens": 65})
        assert r.status_code == 422 and "limit of 64" in r.text
        r = post({"prompt": " ".join(["red apple blue sky"] * 30)})
        assert r.status_code == 422 and "at most 32" in r.text
        r = post({"prompt": "red apple", "stream": True, "num_beams": 2})
        assert r.status_code == 422 and "num_beams=1" in r.text
        r = post({"prompt": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 422 and "prompt string" in r.text
        assert client.post("/v1/generate", json={"prompt": "red apple"}).status_code == 401


def test_concurrent_requests_share_a_batch_and_stay_correct(run):
    from fastapi.testclient import TestClient

    app = create_app(run, ServeConfig(api_keys=[KEY], log_level="warning", generate_wait_ms=300, max_batch_size=8))
    with TestClient(app) as client:
        results: dict = {}

        def ask(i):
            results[i] = client.post("/v1/generate", json={"prompt": PAIRS[i][0]}, headers=HEADERS).json()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [results[i]["generated"] for i in range(4)] == [c for _, c in PAIRS]  # left padding is right
        metrics = client.get("/metrics", headers=HEADERS).text
        batches = _metric(metrics, "graftkit_generate_batch_size_count")
        assert batches < 4  # at least two of the four requests ran in one generate() call


def test_client_disconnect_stops_its_generation(tmp_path):
    path = _train(tmp_path, 1)  # barely trained: it would not stop by itself
    gc = json.loads((path / "generation_config.json").read_text())
    (path / "generation_config.json").write_text(json.dumps({**gc, "max_new_tokens": 60, "min_new_tokens": 60}))
    with serving(create_app(path, ServeConfig(api_keys=[KEY], log_level="warning"))) as url:
        with httpx.Client(timeout=60) as http:
            with http.stream("POST", url + "/v1/generate", json={"prompt": "red", "stream": True},
                             headers=HEADERS) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        break  # first token: hang up
            deadline = time.time() + 60
            while time.time() < deadline:  # the batch ends once its only row is cancelled
                metrics = http.get(url + "/metrics", headers=HEADERS).text
                if _metric(metrics, "graftkit_generate_batch_size_count") >= 1:
                    break
                time.sleep(0.2)
            assert _metric(metrics, "graftkit_generate_batch_size_count") == 1
            assert _metric(metrics, "graftkit_generated_tokens_total") < 60


@pytest.mark.browser
def test_playground_streams_generated_text(run, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(tmp_path_factory)
    try:
        with serving(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as url:
            driver.get(url + "/")
            assert driver.find_element(By.ID, "go").text == "Generate"
            driver.find_element(By.ID, "key").send_keys(KEY)
            driver.find_element(By.ID, "text").send_keys(PAIRS[2][0])
            driver.find_element(By.ID, "go").click()
            WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "result")))
            assert driver.find_element(By.ID, "generated").text.strip() == PAIRS[2][1]
    finally:
        driver.quit()


def _chromium(tmp_path_factory):
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):  # a missing browser is a broken test machine, not a reason to skip
        pytest.fail("headless Chromium tests need Debian's `chromium` and `chromium-driver`")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-gen')}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)
