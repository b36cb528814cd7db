"""`graftkit predict --ray`: Ray Data actors on a local 2-CPU Ray give the single-process predictions."""
from __future__ import annotations

import json

import pytest

from deploy_helpers import classifier_run
from graftkit.inference.predict_file import predict_file
from graftkit.inference.predictor import Predictor


@pytest.mark.ray
def test_ray_predict_matches_single_process(tmp_path_factory, tiny_model_dir, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "300")  # a busy CI machine starts the raylet slowly
    from graftkit.inference.ray_predict import predict_ray, read_shards

    run = classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    texts = [f"review {i}: {'great fun' if i % 3 else 'dull and boring'} film" for i in range(60)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    single = tmp_path / "single.jsonl"
    predict_file(Predictor(run), src, single, batch_size=16)
    expected = [json.loads(line) for line in single.read_text(encoding="utf-8").splitlines()]
    try:
        manifest = predict_ray(run, src, tmp_path / "sharded", batch_size=8, workers=2)
    finally:
        ray.shutdown()
    got = read_shards(tmp_path / "sharded")
    assert manifest["rows"] == len(texts) and len(manifest["shards"]) >= 1
    assert [g["input"] for g in got] == texts  # every row once, in input order
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected):
        assert g["scores"] == pytest.approx(e["scores"], abs=1e-5)
    with pytest.raises(Exception, match="exists"):
        predict_ray(run, src, tmp_path / "sharded")
