"""Serving an embedding run: POST /v1/embed returns the run's own vectors; /v1/predict points there."""
from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import run_config, write_csv
from deploy_helpers import classifier_run
from graftkit.serve import ServeConfig, create_app

KEY = "embed-key-0123456789"
GOOD = {"X-API-Key": KEY}
PAIRS = [["how do i reset my password", "password reset steps"], ["where is my card", "card delivery status"],
         ["cancel my order", "order cancellation"], ["change my address", "update postal address"]]


@pytest.fixture(scope="module")
def emb_run(tmp_path_factory, tiny_model_dir):
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("emb-serve")
    path = write_csv(tmp / "pairs.csv", PAIRS * 3, header=("query", "question"))
    cfg = run_config(tmp, tiny_model_dir, path, task={"type": "embedding"},
                     data={"text_column": "query", "text_pair_column": "question",
                           "split": {"validation": 0.0, "test": 0.0}},
                     train={"epochs": 1, "batch_size": 4, "early_stopping": {}})  # the default: embedding runs refuse others
    return train(cfg, log=lambda m: None).path


def test_embed_endpoint_returns_the_runs_vectors(emb_run):
    from graftkit.tasks.common.bi_encoder import load_model

    texts = ["where is my card", "cancel my order"]
    with TestClient(create_app(emb_run, ServeConfig(api_keys=[KEY]))) as c:
        r = c.post("/v1/embed", json={"texts": texts}, headers=GOOD)
        assert r.status_code == 200, r.text
        body = r.json()
        wrong = c.post("/v1/predict", json={"texts": texts}, headers=GOOD)
    vectors = np.array(body["embeddings"])
    direct = load_model(str(emb_run)).encode(texts, normalize_embeddings=True)
    assert body["dimension"] == vectors.shape[1] == direct.shape[1]
    np.testing.assert_allclose(vectors, direct, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert wrong.status_code == 400 and "POST /v1/embed" in wrong.json()["error"].split("support:")[1]


def test_embed_on_a_classifier_points_to_predict(tmp_path_factory, tiny_model_dir):
    run = classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    with TestClient(create_app(run, ServeConfig(api_keys=[KEY]))) as c:
        r = c.post("/v1/embed", json={"texts": ["x"]}, headers=GOOD)
    # refused in one line naming what a classification run supports instead: POST /v1/predict
    assert r.status_code == 400 and "POST /v1/embed: classification runs do not support this" in r.json()["error"]
    assert "POST /v1/predict" in r.json()["error"].split("support:")[1]
