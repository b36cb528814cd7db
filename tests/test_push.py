"""graftkit push: the Hub client is real, its HTTP transport is a mock that records every request."""
from __future__ import annotations

import base64
import json

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import _http

from graftkit.errors import GraftkitError
from graftkit.export.push import find_secrets, push_run

FAKE_TOKEN = "hf_" + "x" * 34  # passed to HfApi only, never written into the run folder


@pytest.fixture
def hub(monkeypatch):
    """A fake Hub endpoint: accepts repo creation, pre-upload and commits; records the committed files."""
    state = {"requests": [], "files": {}}

    def handler(req: httpx2.Request) -> httpx2.Response:
        state["requests"].append(f"{req.method} {req.url.path}")
        path = req.url.path
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": "https://hub.test/me/run", "name": "run"})
        if path == "/api/validate-yaml":  # the Hub checks the card's metadata before the commit
            state["validated"] = json.loads(req.content)["content"]
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if "/preupload/" in path:
            files = json.loads(req.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            for line in req.content.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    state["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return httpx2.Response(200, json={"commitUrl": "https://hub.test/me/run/commit/abc",
                                              "commitOid": "a" * 40, "success": True})
        return httpx2.Response(404, json={"error": "not mocked"})

    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    yield state
    _http.set_client_factory(_http.default_client_factory)


def _run(tmp_path, complete=True):
    run = tmp_path / "run"
    (run / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run / "logs").mkdir()
    (run / "checkpoints" / "checkpoint-4" / "optimizer.pt").write_bytes(b"state")
    (run / "logs" / "events.out").write_bytes(b"tb")
    (run / "config.json").write_text("{}")
    (run / "labels.json").write_text(json.dumps({"task": "classification", "labels": ["neg", "pos"]}))
    (run / "model.safetensors").write_bytes(b"\0" * 64)
    (run / "README.md").write_text("---\nlibrary_name: transformers\n---\n# card\n")
    (run / "config.yaml").write_text("name: run\n")
    (run / ".metrics.json.lock").write_text("")  # a writer's lock (graftkit/io.py), left in place by design
    if complete:
        (run / "COMPLETE").write_text("")
    return run


def _api():
    return HfApi(endpoint="https://hub.test", token=FAKE_TOKEN)


def test_push_uploads_the_run_but_not_checkpoints_logs_or_locks(tmp_path, hub):
    run = _run(tmp_path)
    url = push_run(run, "me/run", api=_api())
    assert url == "https://hub.test/me/run/commit/abc"
    assert hub["requests"][-1] == "POST /api/models/me/run/commit/main"
    assert set(hub["files"]) == {"config.json", "labels.json", "model.safetensors", "README.md", "config.yaml",
                                 "COMPLETE"}
    assert hub["files"]["README.md"].startswith(b"---\nlibrary_name")
    assert hub["validated"].startswith("---\nlibrary_name")


def test_push_refuses_an_unfinished_run(tmp_path, hub):
    run = _run(tmp_path, complete=False)
    with pytest.raises(GraftkitError, match="COMPLETE"):
        push_run(run, "me/run", api=_api())
    assert not any(r.endswith("/commit/main") or r.endswith("/create") for r in hub["requests"])


@pytest.mark.parametrize("name,content,reason", [
    (".env", "PASSWORD=1\n", "credential file"),
    ("notes.txt", "call with token hf_" + "A1b2" * 9 + " please\n", "Hugging Face token"),
    ("config.yaml", "name: run\naws: AKIA" + "ABCDEFGHIJKLMNOP" + "\n", "AWS access key"),
    ("server.pem", "x", "credential file"),
    ("deploy.json", '{"k": "-----BEGIN RSA PRIVATE KEY-----"}', "private key"),
])
def test_push_refuses_secret_looking_files(tmp_path, hub, name, content, reason):
    run = _run(tmp_path)
    (run / name).write_text(content)
    assert any(reason in s and s.startswith(name) for s in find_secrets(run))
    with pytest.raises(GraftkitError, match="secrets"):
        push_run(run, "me/run", api=_api())
    assert not any("/commit/" in r or r.endswith("/create") for r in hub["requests"])


def test_secrets_inside_checkpoints_are_not_scanned_because_they_are_not_pushed(tmp_path):
    run = _run(tmp_path)
    (run / "checkpoints" / ".env").write_text("X=1")
    assert find_secrets(run) == []
