"""The HTTP service through FastAPI's test client: auth, limits, bad input, PII in logs, metrics, batching."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from deploy_helpers import classifier_run, ner_run
from graftkit.errors import ConfigError
from graftkit.serve import ServeConfig, create_app
from graftkit.serve.batching import BatcherClosed, MicroBatcher
from graftkit.serve.pii import mask_pii
from graftkit.serve.security import hash_key

KEY = "test-key-123-abcdefgh"
GOOD = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    return classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)


@pytest.fixture(scope="module")
def client(run):
    app = create_app(run, ServeConfig(api_keys=[KEY], max_texts=4, max_chars=50, max_body_bytes=2048,
                                      log_inputs=True, rate_limit_burst=1000))
    with TestClient(app) as c:
        yield c


def test_predict_and_auth(client, run, tmp_path, monkeypatch):
    r = client.post("/v1/predict", json={"texts": ["i loved every minute", "bad and tedious"]}, headers=GOOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["label"] for p in body["predictions"]] == ["pos", "neg"]
    assert set(body["predictions"][0]["scores"]) == {"neg", "pos"} and body["model"] == "t"
    assert r.headers["X-Request-ID"] == body["request_id"]
    assert client.post("/v1/predict", json={"texts": ["x"]},
                       headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    r = client.post("/v1/predict", json={"texts": ["x"]})
    assert r.status_code == 401 and "missing API key" in r.json()["error"]
    r = client.post("/v1/predict", json={"texts": ["x"]}, headers={"X-API-Key": "wrong-key-wrong-key"})
    assert r.status_code == 403 and r.json()["error"] == "invalid API key"
    # keys from a file (one stored only as its hash) and from the environment
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# service keys\n{hash_key('hashed-key-0123456')}\n", encoding="utf-8")
    monkeypatch.setenv("GRAFTKIT_API_KEYS", "env-key-0123456789")
    app = create_app(run, ServeConfig(api_keys_file=keys))
    with TestClient(app) as c:
        for k, status in (("hashed-key-0123456", 200), ("env-key-0123456789", 200),
                          (hash_key("hashed-key-0123456"), 403)):
            assert c.post("/v1/predict", json={"texts": ["x"]}, headers={"X-API-Key": k}).status_code == status
    monkeypatch.delenv("GRAFTKIT_API_KEYS")
    with pytest.raises(ConfigError, match="no API keys"):
        create_app(run, ServeConfig())


@pytest.mark.parametrize("payload, status, message", [
    ({"texts": ["a"] * 5}, 422, "texts: List should have at most 4 items"),
    ({"texts": ["a" * 51]}, 422, "texts.0: String should have at most 50 characters"),
    ({"texts": []}, 422, "texts: List should have at least 1 item"),
    ({"texts": "not a list"}, 422, "texts: Input should be a valid list"),
    ({"texts": [1, 2]}, 422, "texts.0: Input should be a valid string"),
    ({"text": ["a"]}, 422, "texts: Field required"),
    ({"texts": ["a"], "text_pairs": ["b"]}, 422, "trained on single texts"),
    ({"texts": ["a" * 40] * 4, "pad": "x" * 3000}, 413, "request body too large: the max_body_bytes limit is 2048"),
])
def test_request_limits(client, payload, status, message):
    r = client.post("/v1/predict", json=payload, headers=GOOD)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert "a" * 40 not in r.text  # errors do not echo the input back
    limit = {"at most 4 items": ("max_texts", 4), "at most 50 characters": ("max_chars", 50),
             "too large": ("max_body_bytes", 2048)}
    for phrase, (name, value) in limit.items():  # a limit's error names it and its value, also as fields
        if phrase in message:
            assert r.json()["limit"] == {"name": name, "value": value}
            assert f"{name} limit is {value}" in r.json()["error"]


@pytest.mark.parametrize("raw, message", [
    (b'{"texts": ["a"', "not valid JSON"), (b"\xff\xfe", "not valid JSON"), (b"", "Field required"),
    (b'{"texts": ["\\ud800"]}', "texts.0: Input should be a valid string"), (b"[]", "Input should be a valid dictionary"),
])
def test_malformed_bodies(client, raw, message):
    r = client.post("/v1/predict", content=raw, headers={**GOOD, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert client.get("/healthz").json() == {"status": "ok"}  # still alive


def test_pii_masked_in_logs(client, caplog):
    secret = "Mail jane.doe@example.com, card 4111 1111 1111 1111, call +1 415 555 0134"
    with caplog.at_level(logging.INFO, logger="graftkit.serve"):
        r = client.post("/v1/predict", json={"texts": ["card 4111 1111 1111 1111 mail jane.doe@example.com"]},
                        headers=GOOD)
    assert r.status_code == 200
    logged = "\n".join(rec.getMessage() + json.dumps({k: v for k, v in vars(rec).items() if k.startswith("x_")})
                       for rec in caplog.records)
    assert "[EMAIL]" in logged and "jane.doe@example.com" not in logged
    assert "4111 1111" not in logged and "[CARD]" in logged
    assert mask_pii(secret) == "Mail [EMAIL], card [CARD], call [PHONE]"
    assert mask_pii("SSN 536-22-1842, IBAN DE89 3704 0044 0532 0130 00") == "SSN [ID], IBAN [IBAN]"
    assert mask_pii("Revenue rose 12.5% to EUR 1,200 million in 2009") == \
        "Revenue rose 12.5% to EUR 1,200 million in 2009"


def test_pii_masked_before_model(run):
    app = create_app(run, ServeConfig(api_keys=[KEY], mask_pii_input=True))
    seen = []
    with TestClient(app) as c:
        batcher = app.state.service.batcher
        inner = batcher.predict_batch
        batcher.predict_batch = lambda xs: seen.extend(xs) or inner(xs)
        assert c.post("/v1/predict", json={"texts": ["write to a@b.com"]}, headers=GOOD).status_code == 200
    assert seen == ["write to [EMAIL]"]


def test_health_metrics_docs_playground(client):
    assert client.get("/readyz").json()["ready"] is True
    assert client.get("/v1/model").status_code == 401 and client.get("/metrics").status_code == 401
    info = client.get("/v1/model", headers=GOOD).json()
    assert info["labels"] == ["neg", "pos"] and info["task"] == "classification" and info["max_texts"] == 4
    client.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD)
    client.post("/v1/predict", json={"texts": ["x"]})
    text = client.get("/metrics", headers=GOOD).text
    assert re.search(r'graftkit_requests_total\{path="/v1/predict",status="200"\} [1-9]', text)
    assert re.search(r'graftkit_requests_total\{path="/v1/predict",status="401"\} [1-9]', text)
    assert 'graftkit_request_latency_seconds_bucket{le="0.005",path="/v1/predict"}' in text
    assert re.search(r"graftkit_batch_size_count [1-9]", text)
    assert 'graftkit_model_info{backend="torch",labels="neg,pos",run="t",task="classification"} 1.0' in text
    spec = client.get("/openapi.json").json()
    req = spec["components"]["schemas"]["PredictRequest"]["properties"]["texts"]
    assert req["maxItems"] == 4 and req["items"]["maxLength"] == 50
    assert {"401", "403", "413", "422", "429"} <= set(spec["paths"]["/v1/predict"]["post"]["responses"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/v1/predict" in page.text and "<mark" in page.text


def test_rate_limit_per_key(run):
    other = "other-key-0123456789"
    app = create_app(run, ServeConfig(api_keys=[KEY, other], rate_limit_burst=100, rate_limit_per_minute=2))
    with TestClient(app) as c:
        codes = [c.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD)
        body = r.json()
        assert 1 <= int(r.headers["Retry-After"]) <= 60 and body["retry_after_s"] == int(r.headers["Retry-After"])
        assert body["limit"] == {"name": "rate_limit_per_minute", "value": 2}
        assert "rate_limit_per_minute exceeded: the limit is 2 per minute; retry after" in body["error"]
        assert c.post("/v1/predict", json={"texts": ["x"]}, headers={"X-API-Key": other}).status_code == 200
    app = create_app(run, ServeConfig(api_keys=[KEY], rate_limit_burst=2, rate_limit_per_minute=1000))

    async def burst():  # three requests at the same moment: the per-second window admits two
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as ac:
                rs = await asyncio.gather(*(ac.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD)
                                            for _ in range(3)))
        return sorted(r.status_code for r in rs), [r.json() for r in rs if r.status_code == 429]

    codes, refused = asyncio.run(burst())
    assert codes == [200, 200, 429] and refused[0]["limit"] == {"name": "rate_limit_burst", "value": 2}


def test_batching_groups_concurrent_requests(run):
    """Eight concurrent one-text requests become one model call of eight texts."""
    app = create_app(run, ServeConfig(api_keys=[KEY], max_batch_size=8, max_wait_ms=60_000))
    calls = []

    async def scenario():
        async with app.router.lifespan_context(app):
            batcher = app.state.service.batcher
            inner = batcher.predict_batch
            batcher.predict_batch = lambda xs: calls.append(len(xs)) or inner(xs)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
                rs = await asyncio.gather(*(ac.post("/v1/predict", json={"texts": [f"text {i}"]}, headers=GOOD)
                                            for i in range(8)))
                metrics = (await ac.get("/metrics", headers=GOOD)).text
        return rs, metrics

    responses, metrics = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 8
    assert calls == [8]
    assert "graftkit_batch_size_count 1.0" in metrics and "graftkit_batch_size_sum 8.0" in metrics


def test_batcher_drains_on_shutdown_and_isolates_failures():
    def predict(xs):
        time.sleep(0.05)
        if "boom" in xs:
            raise ValueError("bad input")
        return [{"echo": x} for x in xs]

    async def scenario():
        b = MicroBatcher(predict, max_batch_size=4, max_wait_ms=10)
        b.start()
        tasks = [asyncio.create_task(b.submit([f"t{i}", f"u{i}"])) for i in range(5)]
        bad = asyncio.create_task(b.submit(["boom"]))
        await asyncio.sleep(0)  # all requests are queued; now shut down
        await b.close()  # returns once every queued input has its answer
        _, pending = await asyncio.wait(tasks + [bad], timeout=5)
        assert not pending
        with pytest.raises(BatcherClosed):
            await b.submit(["late"])
        return [t.result() for t in tasks], bad.exception()

    results, err = asyncio.run(scenario())
    assert results[3] == [{"echo": "t3"}, {"echo": "u3"}]
    assert isinstance(err, ValueError)


def test_settings_from_environment(run, monkeypatch):
    monkeypatch.setenv("GRAFTKIT_SERVE_MAX_TEXTS", "2")
    monkeypatch.setenv("GRAFTKIT_SERVE_RATE_LIMIT_BURST", "1000")
    monkeypatch.setenv("GRAFTKIT_SERVE_API_KEYS", json.dumps([hash_key(KEY)]))
    app = create_app(run)  # settings are read now, not at import
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"texts": ["a", "b"]}, headers=GOOD).status_code == 200
        assert c.post("/v1/predict", json={"texts": ["a"] * 3}, headers=GOOD).status_code == 422
    monkeypatch.setenv("GRAFTKIT_SERVE_MAX_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="max_batch_size"):
        create_app(run)


def test_serve_onnx_int8_and_ner(run, tmp_path_factory, tiny_model_dir):
    from graftkit.export import export_run
    from graftkit.inference.predictor import Predictor

    if not (run / "onnx" / "model.int8.onnx").is_file():
        # the parity gate in force (default int8_tolerance): the int8 graph's test metric is torch's within 0.01
        report = export_run(run, quantize="int8", log=lambda m: None)
        assert report["int8_metric_drop"] <= 0.01
    texts = ["i loved every minute", "bad and tedious", "brilliant and fun", "terrible plot and awful dialogue"]
    expected = Predictor(run).predict(texts)  # torch
    app = create_app(run, ServeConfig(api_keys=[KEY], backend="onnx", precision="int8"))
    with TestClient(app) as c:
        r = c.post("/v1/predict", json={"texts": texts}, headers=GOOD)
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        # the served int8 graph agrees with the torch predictions: the same labels, probabilities within 0.01
        assert [p["label"] for p in got] == [e.label for e in expected] and expected[0].label == "pos"
        for g, e in zip(got, expected):
            assert g["scores"] == pytest.approx(e.scores, abs=0.01)
        assert 'backend="onnx-int8"' in c.get("/metrics", headers=GOOD).text
    ner = ner_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    text = "Peter visited Siemens in Munich"
    local = Predictor(ner).predict([text, ""])
    with TestClient(create_app(ner, ServeConfig(api_keys=[KEY]))) as c:
        r = c.post("/v1/predict", json={"texts": [text, ""]}, headers=GOOD)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        entities = preds[0]["entities"]
        assert entities, "the tiny NER run should find entities in a sentence made of its training words"
        # what the run predicts locally, entity by entity: type, offsets, text (scores to float precision)
        assert [(e["label"], e["start"], e["end"], e["text"]) for e in entities] == \
            [(e.label, e.start, e.end, e.text) for e in local[0].entities]
        assert [e["score"] for e in entities] == pytest.approx([e.score for e in local[0].entities], abs=1e-5)
        # the person it was trained on, found with its type and offsets (the clearest of the tiny run's decisions)
        assert {"label": "PER", "start": 0, "end": 5, "text": "Peter"}.items() <= entities[0].items()
        for e in entities:
            assert text[e["start"]:e["end"]] == e["text"] and e["label"] in {"PER", "ORG", "LOC"}
        assert preds[1]["entities"] == [] and local[1].entities == []


def test_cli_errors_are_friendly(run, monkeypatch):
    from typer.testing import CliRunner

    from graftkit.cli import app

    monkeypatch.delenv("GRAFTKIT_API_KEYS", raising=False)
    res = CliRunner().invoke(app, ["serve", str(run)])
    assert res.exit_code == 2 and "no API keys configured" in res.output
    res = CliRunner().invoke(app, ["export", str(run), "--format", "tflite"])
    assert res.exit_code == 2 and "unknown export format 'tflite'" in res.output and "onnx" in res.output
    res = CliRunner().invoke(app, ["serve", str(run), "--backend", "tensorrt", "--allow-anonymous"])
    assert res.exit_code == 2 and "backend" in res.output
