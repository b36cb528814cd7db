"""The studio's explanation heat-map API (POST /api/runs/NAME/explain): a token and a score per word, scores that
add up to the explained score's change (completeness) and flip sign with the other class of two; refusals for an
unknown run, a run folder linked out of the workspace, a text over the limit, a task that does not explain and a
missing token; the attribution runs in a worker thread, so the studio answers other requests meanwhile."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from conftest import run_config
from studio_helpers import ROWS, TOKEN, client, workspace_with_run
from graftkit.apps.studio.heatmap import MAX_CHARS

TEXT = "a lovely and moving film"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    """The classification run ``first`` and an embedding run ``emb`` (a task without the Explains capability)."""
    from graftkit.train.trainer import train

    ws = workspace_with_run(tmp_path_factory.mktemp("studio-explain"), tiny_model_dir, steps=2, plots=False)
    cfg = run_config(ws, tiny_model_dir, ws / "data" / "reviews.csv", name="emb", task={"type": "embedding"},
                     train={"max_steps": 1}, eval={"robustness_rows": 0, "calibrate": False})
    train(cfg, log=lambda m: None)
    return ws


def _explain(c, run: str, text: str = TEXT, **kw):
    return c.post(f"/api/runs/{run}/explain", json={"text": text, **kw})


def test_a_token_and_a_score_per_word_adding_up_to_the_change(workspace):
    c = client(workspace)
    got = _explain(c, "first").json()
    predicted = c.post("/api/runs/first/predict", json={"text": TEXT}).json()["label"]
    assert got["target"] == predicted and len(got["blocks"]) == 1
    block = got["blocks"][0]
    assert block["tokens"] == TEXT.split() and block["segments"] == [0] * 5
    assert len(block["scores"]) == 5 and all(math.isfinite(x) for x in block["scores"])
    assert any(x != 0 for x in block["scores"])
    # completeness: the attributions add up to f(text) - f(baseline), up to the reported integration error
    assert sum(block["scores"]) - (got["score"] - got["baseline_score"]) == pytest.approx(block["delta"], abs=1e-5)
    # with two classes p(other) = 1 - p(predicted): every word's attribution toward the other class is the negation
    other = next(label for _, label in ROWS if label != predicted)
    flipped = _explain(c, "first", target=other).json()
    assert flipped["target"] == other
    scale = max(abs(x) for x in block["scores"])
    assert np.allclose(flipped["blocks"][0]["scores"], [-x for x in block["scores"]], rtol=0, atol=1e-3 * scale)
    r = _explain(c, "first", target="maybe")
    assert r.status_code == 400 and r.json()["error"].startswith("unknown class 'maybe'")


def test_refusals(workspace, tmp_path):
    import shutil

    c = client(workspace)
    r = _explain(c, "nope")
    assert r.status_code == 404 and r.json()["error"] == "no run 'nope' in runs/"
    assert _explain(c, "..%2Ffirst").status_code == 404
    assert _explain(c, "%2E%2E").status_code == 404
    outside = shutil.copytree(workspace / "runs" / "first", tmp_path / "elsewhere")
    (workspace / "runs" / "linked").symlink_to(outside)  # a run folder that is a link out of the workspace
    try:
        r = _explain(c, "linked")
        assert r.status_code == 403 and "outside the workspace" in r.json()["error"]
    finally:
        (workspace / "runs" / "linked").unlink()
    r = _explain(c, "first", "word " * (MAX_CHARS // 5 + 1))
    assert r.status_code == 413 and r.json()["error"] == (
        f"the text has {MAX_CHARS + 5} characters; explanations take at most {MAX_CHARS} (each costs many forward "
        "and backward passes)")
    r = _explain(c, "first", "   ")
    assert r.status_code == 400 and r.json()["error"] == "type some text to explain"
    r = _explain(c, "emb")  # asked through the Explains capability: one line naming what the task supports
    error = r.json()["error"]
    assert r.status_code == 400 and error.startswith("explain: embedding runs do not support this; embedding runs "
                                                     "support: ") and "\n" not in error


def test_the_token_is_required(workspace):
    with client(workspace, token=TOKEN) as c:
        assert _explain(c, "first").status_code == 401
        r = c.post("/api/runs/nope/explain", json={"text": TEXT}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404


def test_the_attribution_runs_off_the_event_loop(workspace):
    """While one explanation works (here: waits for the test), the same studio still answers other requests."""
    with client(workspace) as c:
        explanations = c.app.state.studio.explanations
        started, release = threading.Event(), threading.Event()

        def slow(run_dir, text, pair=None, target=None):
            started.set()
            return {"released": release.wait(20)}  # blocking the event loop would stall the GET below until then

        explanations.explain = slow
        replies = []
        worker = threading.Thread(target=lambda: replies.append(_explain(c, "first").json()))
        worker.start()
        assert started.wait(20)
        assert c.get("/api/runs").status_code == 200
        release.set()
        worker.join(30)
    assert replies == [{"released": True}]
