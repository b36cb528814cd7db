"""`graftkit serve --ray`: the same app as a Ray Serve deployment with 2 replicas on a small local Ray."""
from __future__ import annotations

import socket

import httpx
import pytest

from deploy_helpers import ROWS, classifier_run
from graftkit.errors import ConfigError
from graftkit.serve import ray_deploy
from graftkit.serve.settings import load_settings

KEY = "ray-test-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ray
def test_two_replicas_answer_like_the_local_predictor(tmp_path, tiny_model_dir):
    from ray import serve

    from graftkit.inference.predictor import Predictor

    run = classifier_run(tmp_path, tiny_model_dir)
    port = _free_port()
    settings = load_settings(run_dir=str(run), api_keys=[KEY], port=port, max_wait_ms=1.0)
    ray_cfg = ray_deploy.load_ray_settings(replicas=2, num_cpus=2)
    texts = [r[0] for r in ROWS]
    expected = Predictor(run).predict(texts)
    base = f"http://127.0.0.1:{port}"
    # the builder Ray's own `serve run`/`serve deploy` config files use (configs/serve-ray.yaml)
    assert isinstance(ray_deploy.app_builder({"run_dir": str(run), "max_wait_ms": 1}), serve.Application)
    ray_deploy.start(str(run), settings, ray_cfg, log_to_driver=False)
    try:
        status = serve.status().applications[ray_deploy.APP_NAME].deployments[ray_deploy.DEPLOYMENT]
        assert status.replica_states == {"RUNNING": 2}
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(4):  # several requests: the proxy spreads them over the replicas
                r = client.post("/v1/predict", json={"texts": texts}, headers={"X-API-Key": KEY})
                assert r.status_code == 200, r.text
                got = r.json()["predictions"]
                assert [p["label"] for p in got] == [p.label for p in expected]
                for g, e in zip(got, expected):
                    assert g["score"] == pytest.approx(e.score, abs=1e-5)
            # auth and metrics behave as under uvicorn: they are the same app
            assert client.post("/v1/predict", json={"texts": ["x"]}).status_code == 401
            assert client.post("/v1/predict", json={"texts": ["x"]}, headers={"X-API-Key": "nope"}).status_code == 403
            assert client.get("/readyz").json()["ready"] is True
            assert "graftkit_requests_total" in client.get("/metrics", headers={"X-API-Key": KEY}).text
    finally:
        ray_deploy.shutdown()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=5)


def test_replica_and_autoscaling_options(tmp_path, monkeypatch):
    assert ray_deploy.load_ray_settings(replicas=3).deployment_options()["num_replicas"] == 3
    monkeypatch.setenv("GRAFTKIT_RAY_MAX_REPLICAS", "4")  # bounds may come from the environment
    opts = ray_deploy.load_ray_settings(min_replicas=1, cpus_per_replica=0.5).deployment_options()
    assert "num_replicas" not in opts and opts["ray_actor_options"]["num_cpus"] == 0.5
    assert opts["autoscaling_config"]["min_replicas"] == 1 and opts["autoscaling_config"]["max_replicas"] == 4
    with pytest.raises(ConfigError, match="min_replicas .*above max_replicas"):
        ray_deploy.load_ray_settings(min_replicas=5)
    monkeypatch.delenv("GRAFTKIT_RAY_MAX_REPLICAS")
    with pytest.raises(ConfigError, match="set both min_replicas and max_replicas"):
        ray_deploy.load_ray_settings(min_replicas=1)
    with pytest.raises(ConfigError, match="run_dir"):
        ray_deploy.app_builder({"port": 8000})
    keys = tmp_path / "keys.txt"
    keys.write_text("file-key-0123456789\n")
    shipped = ray_deploy.replica_settings(load_settings(api_keys=["plain-key-0123456789"], api_keys_file=keys),
                                          ray_deploy.load_ray_settings(cpus_per_replica=2))
    assert shipped.api_keys_file is None and all(k.startswith("sha256:") for k in shipped.api_keys)
    assert len(shipped.api_keys) >= 2 and shipped.threads == 2  # replicas never see plain keys
