"""graftkit studio at the API level: paths stay inside the workspace, the binding and token rules, the upload
limit, the form validates with the CLI's own message and saves a config `graftkit train` loads unchanged, jobs
outlive the studio (a running one comes back interrupted), and the run pages read a real run folder."""
from __future__ import annotations

import os
import shutil
import time

import pytest
import yaml
from typer.testing import CliRunner

from studio_helpers import TOKEN, client, workspace_with_run
from graftkit.apps.studio.access import check_binding
from graftkit.apps.studio.app import studio_app
from graftkit.apps.studio.jobs import JobStore
from graftkit.cli.main import app as cli_app
from graftkit.errors import ConfigError



@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    """A workspace holding one small trained run, ``first``, and a copy of it, ``second``."""
    ws = workspace_with_run(tmp_path_factory.mktemp("studio-ws"), tiny_model_dir, steps=3, plots=True)
    shutil.copytree(ws / "runs" / "first", ws / "runs" / "second")
    return ws


def test_paths_outside_the_workspace_are_refused(workspace, tmp_path):
    (workspace / "data" / "out").symlink_to(tmp_path)  # a link pointing out of the workspace
    try:
        with client(workspace) as c:
            for path in ("../secret.csv", "data/../../secret.csv", "/etc/passwd", "data/out/x.csv"):
                r = c.get("/api/data/preview", params={"path": path})
                assert r.status_code == 403 and "refused" in r.json()["error"], path
            r = c.get("/api/runs/first/file", params={"path": "../../data/reviews.csv"})
            assert r.status_code == 403 and r.json()["error"].endswith("it leaves the run folder")
            assert c.put("/api/data/..%2Fevil.csv", content=b"text,label\n").status_code in (403, 404)
            assert c.put("/api/data/.hidden.csv", content=b"text,label\n").status_code == 403
            r = c.post("/api/jobs", json={"config": "../outside.yaml"})
            assert r.status_code == 403
    finally:
        (workspace / "data" / "out").unlink()
    assert not (workspace.parent / "evil.csv").exists()


def test_binding_needs_a_token_off_loopback():
    check_binding("127.0.0.1", None)
    check_binding("localhost", None)
    with pytest.raises(ConfigError, match="listening on 0.0.0.0 needs a token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(ConfigError, match="the token has 5 characters"):
        check_binding("0.0.0.0", "short")
    check_binding("0.0.0.0", TOKEN)
    res = CliRunner().invoke(cli_app, ["studio", ".", "--host", "0.0.0.0"], env={"GRAFTKIT_STUDIO_TOKEN": ""})
    assert res.exit_code == 2 and "needs a token" in res.output


def test_token_and_host_rules(workspace):
    with client(workspace, token=TOKEN) as c:
        assert c.get("/api/runs").status_code == 401
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        r = c.get("/", params={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/api/runs").status_code == 200  # the cookie now
    with client(workspace) as c:  # no token: only requests addressed to loopback
        assert c.get("/api/runs", headers={"Host": "evil.example"}).status_code == 403
        assert c.get("/api/runs", headers={"Host": "localhost:7860"}).status_code == 200


def test_upload_over_the_limit_is_413(workspace):
    with client(workspace, max_upload=100) as c:
        r = c.put("/api/data/big.csv", content=b"text,label\n" + b"x,pos\n" * 50)
        assert r.status_code == 413 and r.json()["error"] == "upload 'big.csv' is over the limit of 100 bytes"
        r = c.put("/api/data/big.csv", content=iter([b"text,label\n"] + [b"x,pos\n"] * 50))  # chunked: no length
        assert r.status_code == 413
        assert not (workspace / "data" / "big.csv").exists() and not list((workspace / "data").glob(".big*"))
        r = c.put("/api/data/small.csv", content=b"text,label\nhi,pos\n")
        assert r.status_code == 200 and r.json()["columns"] == ["text", "label"] and r.json()["format"] == "csv"


def _form(**values) -> dict:
    return {"task": "classification", "values": {"data.train": "data/reviews.csv", **values}}


def test_form_validates_with_the_cli_message(workspace, tiny_model_dir, monkeypatch):
    from graftkit.tasks.run_config import load_config

    with client(workspace) as c:
        r = c.post("/api/configs", json=_form(name="bad", **{"train.learning_rate": "-1"}))
        assert r.status_code == 400
        assert not (workspace / "configs" / "bad.yaml").exists()
        form_message = r.json()["error"]
        tree = {"task": {"type": "classification"}, "output_dir": "../runs", "train": {"learning_rate": -1},
                "data": {"train": "../data/reviews.csv"}}
        (workspace / "configs" / "bad.yaml").write_text(yaml.safe_dump(tree))
        monkeypatch.chdir(workspace)
        with pytest.raises(ConfigError) as cli:
            load_config("configs/bad.yaml")
        assert form_message == str(cli.value)
        assert form_message == ("configs/bad.yaml: invalid configuration\n"
                                "  - train.learning_rate: Input should be greater than 0 (got -1)")
        r = c.post("/api/configs", json=_form(name="ok", **{"model.name_or_path": tiny_model_dir,
                                                           "train.max_steps": "2", "train.report_to": "[]"}))
        assert r.status_code == 200, r.text
    saved = yaml.safe_load((workspace / "configs" / "ok.yaml").read_text())
    assert saved["train"] == {"max_steps": 2, "report_to": []} and saved["data"] == {"train": "../data/reviews.csv"}
    monkeypatch.chdir("/")  # the saved file loads the same from anywhere
    cfg = load_config(workspace / "configs" / "ok.yaml")
    assert cfg.run_dir == workspace / "runs" / "ok" and cfg.data.train == str(workspace / "data" / "reviews.csv")


def test_form_has_every_key_with_defaults_and_descriptions(workspace):
    with client(workspace) as c:
        schema = c.get("/api/form/classification").json()
        fields = {f["key"]: f for s in schema["sections"] for f in s["fields"]}
        assert fields["train.learning_rate"]["default"] == "5.0e-05"
        assert fields["train.optimizer"]["choices"] == ["adamw", "sgd", "adafactor"]
        assert fields["data.split.validation"]["description"] == "fraction of rows for validation"
        assert "task.threshold" in fields and "task.type" not in fields
        assert "task.crf" in {f["key"] for s in c.get("/api/form/ner").json()["sections"] for f in s["fields"]}
        r = c.get("/api/form/nope")
        assert r.status_code == 400 and r.json()["error"].startswith("unknown task type 'nope'; choose one of:")


def test_running_job_comes_back_interrupted_and_resumable(tmp_path):
    studio_app(tmp_path)  # creates the workspace and its job table
    store = JobStore(f"sqlite:///{tmp_path / '.studio' / 'jobs.db'}")
    job = store.add("configs/x.yaml", "x", "runs/x")
    store.set(job, state="running", pid=os.getpid(), started_at=time.time())
    (tmp_path / "runs" / ".x.partial").mkdir()
    with client(tmp_path) as c:  # a new studio: the job was running when the last one died
        got = c.get("/api/jobs").json()["jobs"][0]
        assert got["state"] == "interrupted" and "resume it" in got["message"]
        row = next(r for r in c.get("/api/runs").json()["runs"] if r["name"] == "x")
        assert row["status"] == "interrupted"
        assert c.post("/api/jobs/99/stop").status_code == 404
    assert store.requeue(job)["state"] == "queued" and store.get(job)["resume"]


def test_failed_job_shows_the_cli_error(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "broken.yaml").write_text("output_dir: ../runs\ndata: {train: ../data/none.csv}\n")
    with client(tmp_path) as c:
        job = c.post("/api/jobs", json={"config": "configs/broken.yaml"}).json()
        deadline = time.time() + 120
        while c.get("/api/jobs").json()["jobs"][0]["state"] in ("queued", "running") and time.time() < deadline:
            time.sleep(0.5)
        got = c.get("/api/jobs").json()["jobs"][0]
        assert got["id"] == job["id"] and got["state"] == "failed" and got["exit_code"] == 2
        assert "none.csv" in got["message"] and "Traceback" not in c.get(f"/api/jobs/{job['id']}/log").text


def test_runs_table_run_page_mistakes_compare_and_try(workspace):
    from graftkit.inference.runs import open_run

    with client(workspace) as c:
        rows = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
        assert rows["first"]["status"] == "complete" and rows["first"]["task"] == "classification"
        assert rows["first"]["metric"] == "test macro_f1" and rows["first"]["value"] is not None
        page = c.get("/api/runs/first").json()
        assert "plots/confusion_matrix.png" in page["plots"] and page["curves"]["loss"]
        img = c.get("/api/runs/first/file", params={"path": "plots/confusion_matrix.png"})
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        assert c.get("/api/runs/first/file", params={"path": "labels.json"}).status_code == 400
        mistakes = c.get("/api/runs/first/mistakes", params={"split": "test"}).json()
        confidences = [float(r["confidence"]) for r in mistakes["rows"]]
        assert confidences == sorted(confidences, reverse=True)
        for label in mistakes["labels"]["true"]:
            only = c.get("/api/runs/first/mistakes", params={"split": "test", "true": label}).json()["rows"]
            assert only and {r["true"] for r in only} == {label}
        assert c.get("/api/runs/nope").status_code == 404
        both = c.get("/api/compare", params={"runs": "first,second"}).json()
        row = next(m for m in both["metrics"] if m["metric"] == "test.macro_f1")
        assert row["first"] == row["second"] and both["curves"]["first"]["loss"] == both["curves"]["second"]["loss"]
        got = c.post("/api/runs/first/predict", json={"text": "a wonderful film"}).json()
        want = open_run(workspace / "runs" / "first").predict(["a wonderful film"])[0]
        assert got["label"] == want.label and got["score"] == pytest.approx(want.score, abs=1e-6)
        assert c.post("/api/runs/first/predict", json={"text": "  "}).json() == {"error": "type some text to predict on"}


def test_a_stopped_job_says_how_far_its_log_got():
    from graftkit.apps.studio.runner import stopped_message

    assert stopped_message({}) == "stopped before training began; resume starts it"
    assert stopped_message({"step": 30, "total": 100}).startswith("stopped at step 30/100; resume continues")
    assert "while the run was being evaluated" in stopped_message({"step": 100, "total": 100})
