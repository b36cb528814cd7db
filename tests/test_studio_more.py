"""graftkit studio's Label, Deploy and batch-predict pages at the API level, and its rate limit on wrong tokens:
a sheet is selected from a pool, answered and undone, merged into the labelled file and retrained as a new run;
an export writes the parity report; a local service gets a key that no command line or log shows, and stops
with the studio; a file is predicted row by row and downloaded as JSON Lines. Every path stays inside the
workspace."""
from __future__ import annotations

import json
import shutil
import time
import urllib.request

import pytest
import yaml

from conftest import write_csv
from studio_helpers import ROWS, TOKEN, client, workspace_with_run

POOL = [["a lovely story"], ["an awful plot"], ["fine acting"], ["tedious and long"], ["i loved it"],
        ["i hated it"]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    """A workspace with one small trained run, ``first``, its labelled file, a pool and a file to predict."""
    ws = workspace_with_run(tmp_path_factory.mktemp("studio-more"), tiny_model_dir, steps=2, plots=False)
    write_csv(ws / "data" / "pool.csv", POOL, header=("text",))
    write_csv(ws / "data" / "batch.csv", [[t] for t, _ in ROWS[:6]], header=("text",))
    return ws


def test_wrong_tokens_are_rate_limited(tmp_path):
    with client(tmp_path, token=TOKEN) as c:
        assert c.get("/api/runs").status_code == 401  # no token at all is not a guess
        for _ in range(10):
            assert c.get("/api/runs", headers={"Authorization": "Bearer wrong-token-guess"}).status_code == 401
        r = c.get("/api/runs", headers={"Authorization": "Bearer wrong-token-guess"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"].startswith("studio: too many wrong tokens from testclient (the limit is 10 per minute)")
        assert TOKEN not in r.text
        # blocked: the right token too, and the ?token= link, until the window moves on
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
        assert c.get("/", params={"token": TOKEN}, follow_redirects=False).status_code == 429
    with client(tmp_path, token=TOKEN) as c:  # the count lives in the studio process: a new one starts at zero
        assert c.get("/", params={"token": "nope"}, follow_redirects=False).status_code == 401
        assert c.get("/", params={"token": TOKEN}, follow_redirects=False).status_code == 303


def test_label_select_answer_undo_import_and_retrain(workspace):
    from graftkit.tasks.run_config import load_config

    before = (workspace / "data" / "reviews.csv").read_text().count("\n")
    c = client(workspace)  # no lifespan: the job runner does not start, so the retrain job stays queued
    home = c.get("/api/label").json()
    assert home["runs"] == ["first"] and "data/pool.csv" in home["pools"] and "hybrid" in home["strategies"]
    r = c.post("/api/label/select", json={"run": "first", "pool": "../pool.csv", "strategy": "entropy", "k": 3})
    assert r.status_code == 403 and "refused" in r.json()["error"]
    r = c.post("/api/label/select", json={"run": "first", "pool": "data/pool.csv", "strategy": "nope", "k": 3})
    assert r.status_code == 400 and r.json()["error"].startswith("label select --strategy nope: unknown strategy")
    assert c.post("/api/label/select", json={"run": "nope", "pool": "data/pool.csv"}).status_code == 404
    got = c.post("/api/label/select", json={"run": "first", "pool": "data/pool.csv", "strategy": "entropy",
                                            "k": 3}).json()
    assert got["sheet"] == "label/first-1.csv" and got["total"] == 3 and got["answered"] == 0
    assert sorted(got["labels"]) == ["neg", "pos"] and all(row["suggested"] in got["labels"] for row in got["rows"])
    sheet = {"run": "first", "path": got["sheet"]}
    assert c.post("/api/label/answer", json={**sheet, "index": 0, "label": "pos"}).json()["answered"] == 1
    r = c.post("/api/label/answer", json={**sheet, "index": 1, "label": "maybe"})
    assert r.status_code == 400 and r.json()["error"].startswith("label 'maybe' is not one of the run's labels (")
    assert c.post("/api/label/answer", json={**sheet, "index": 1, "label": "neg"}).json()["answered"] == 2
    undone = c.post("/api/label/undo", json=sheet).json()
    assert undone["index"] == 1 and undone["answered"] == 1
    assert c.get("/api/label/sheet", params=sheet).json()["rows"][0]["label"] == "pos"  # saved in the file
    r = c.post("/api/label/answer", json={"run": "first", "path": "data/reviews.csv", "index": 0, "label": "pos"})
    assert r.status_code == 400 and "not a sheet of label/" in r.json()["error"]
    merged = c.post("/api/label/import", json=sheet).json()
    assert merged == {"merged": 1, "unanswered": 2, "into": "data/reviews.csv"}
    assert (workspace / "data" / "reviews.csv").read_text().count("\n") == before + 1
    r = c.post("/api/label/import", json=sheet)  # the same answer again: refused by line, nothing written
    assert r.status_code == 400 and "already labelled" in r.json()["error"]
    job = c.post("/api/label/retrain", json={"run": "first"}).json()
    assert job["run_name"] == "first-r2" and job["config"] == "configs/first-r2.yaml" and job["state"] == "queued"
    cfg = load_config(workspace / "configs" / "first-r2.yaml")
    assert cfg.run_dir == workspace / "runs" / "first-r2" and cfg.data.train == str(workspace / "data" / "reviews.csv")
    assert yaml.safe_load((workspace / "configs" / "first-r2.yaml").read_text())["data"]["train"] == "../data/reviews.csv"
    again = c.post("/api/label/retrain", json={"run": "first"}).json()
    assert again["run_name"] == "first-r3"
    for queued in (job, again):  # no training here: cancelled before any runner starts them
        assert c.post(f"/api/jobs/{queued['id']}/stop").json()["state"] == "cancelled"


def test_label_refuses_a_labelled_file_outside_the_workspace(workspace, tmp_path):
    outside = shutil.copytree(workspace / "runs" / "first", workspace / "runs" / "elsewhere")
    tree = yaml.safe_load((outside / "config.yaml").read_text())
    tree["data"]["train"] = str(write_csv(tmp_path / "secret.csv", ROWS))
    (outside / "config.yaml").write_text(yaml.safe_dump(tree))
    try:
        c = client(workspace)
        r = c.post("/api/label/select", json={"run": "elsewhere", "pool": "data/pool.csv", "k": 2})
        assert r.status_code == 403 and "outside the workspace" in r.json()["error"]
        assert c.post("/api/label/retrain", json={"run": "elsewhere"}).status_code == 403
    finally:
        shutil.rmtree(outside)


def test_batch_predict_and_download(workspace):
    from graftkit.inference.runs import open_run

    c = client(workspace)
    got = c.post("/api/runs/first/predict-file", json={"path": "data/batch.csv"}).json()
    assert got["output"] == "predictions/first-batch.jsonl" and got["rows"] == 6 and len(got["head"]) == 6
    want = open_run(workspace / "runs" / "first").predict([ROWS[0][0]])[0]
    assert got["head"][0]["input"] == ROWS[0][0] and got["head"][0]["label"] == want.label
    r = c.get("/api/download", params={"path": got["output"]})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert [json.loads(line)["input"] for line in r.text.splitlines()] == [t for t, _ in ROWS[:6]]
    for path in ("data/reviews.csv", "../x.jsonl", "predictions/../data/reviews.csv"):
        assert c.get("/api/download", params={"path": path}).status_code == 403, path
    r = c.post("/api/runs/first/predict-file", json={"path": "data/pool.csv/../../../etc/passwd"})
    assert r.status_code == 403
    write_csv(workspace / "data" / "bad.csv", [["x"]], header=("words",))
    r = c.post("/api/runs/first/predict-file", json={"path": "data/bad.csv"})
    assert r.status_code == 400 and "text" in r.json()["error"] and "\n" not in r.json()["error"]


def test_serve_key_env_matches_the_service():
    from graftkit.apps.studio.deploy import SERVE_KEYS_ENV
    from graftkit.serve.security import ENV_KEYS

    assert SERVE_KEYS_ENV == ENV_KEYS


def test_export_with_parity_report(workspace):
    c = client(workspace)
    assert c.get("/api/runs/first/export").json()["state"] == "none"
    r = c.post("/api/runs/first/export", json={"precision": "fp16"})
    assert r.status_code == 400 and r.json()["error"].startswith("precision: unknown 'fp16'")
    assert c.post("/api/runs/first/export", json={"precision": "fp32"}).json()["state"] == "running"
    deadline = time.time() + 600
    while (got := c.get("/api/runs/first/export").json())["state"] == "running" and time.time() < deadline:
        time.sleep(1)
    assert got["state"] == "complete", got
    onnx = got["report"]["backends"]["onnx_fp32"]  # the parity report of `graftkit export`
    assert onnx["logits_max_abs_diff"] < 1e-4 and (workspace / "runs" / "first" / onnx["file"]).is_file()


def test_local_service_key_shown_once_and_stopped_with_the_studio(workspace):
    import psutil

    with client(workspace) as c:
        r = c.post("/api/runs/nope/serve", json={})
        assert r.status_code == 404
        got = c.post("/api/runs/first/serve", json={"backend": "torch"}).json()
        key, url = got["api_key"], got["url"]
        assert url.startswith("http://127.0.0.1:") and len(key) >= 16
        proc = psutil.Process(got["pid"])
        assert key not in " ".join(proc.cmdline())
        assert "api_key" not in c.get("/api/services").json()["services"][0]
        r = c.post("/api/runs/first/serve", json={})
        assert r.status_code == 400 and "served already" in r.json()["error"]
        deadline = time.time() + 300
        while (state := c.get("/api/services").json()["services"][0]["state"]) == "starting" and time.time() < deadline:
            time.sleep(1)
        assert state == "ready", c.get("/api/runs/first/serve/log").json()["log"]
        ask = urllib.request.Request(url + "/v1/predict", data=json.dumps({"texts": ["great fun"]}).encode(),
                                     headers={"Content-Type": "application/json", "X-API-Key": key})
        with urllib.request.urlopen(ask, timeout=30) as reply:
            assert json.load(reply)["predictions"][0]["label"] in ("pos", "neg")
        log = (workspace / ".studio" / "logs" / "serve-first.log").read_text()
        assert key not in log and key not in c.get("/api/services").text
    assert not psutil.pid_exists(proc.pid) or proc.status() == psutil.STATUS_ZOMBIE  # stopped with the studio
