"""Every registered task type × every command and service route (graftkit/tasks/matrix.py).

A supported pair works and its check asserts a real property of what it produced (the CLI, the service
and the library agree; scores are probabilities; entities lie in their text; an ensemble of a run with
itself predicts like the run; a merged adapter predicts like the adapter; ...). An unsupported pair stops
with one line naming the task and what it does support: no traceback, no 500, nothing done silently.

A toy task registered from a temporary folder walks the same matrix: a new task is one folder and one
registry line, and every command either serves it or refuses it clearly.
"""
from __future__ import annotations

import csv
import json
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import write_csv
from graftkit.cli import app
from graftkit.inference.runs import open_run
from graftkit.serve import ServeConfig, create_app
from graftkit.tasks import TASKS
from graftkit.tasks.matrix import ENTRIES, MATRIX
from graftkit.tasks.capabilities import Generates
from matrix_helpers import (
    CLASSES,
    CLICKS,
    DOCS,
    KINDS,
    Kind,
    MatrixRuns,
    _csv,
    forward_logits,
    json_lines,
    predictions_of,
)

KEY = "matrix-key-0123456789"
AUTH = {"X-API-Key": KEY}

TOY_CONFIG = '''
from typing import Literal

from graftkit.config import TaskConfigBase


class ToyConfig(TaskConfigBase):
    """A keyword classifier that exists only inside a test."""

    type: Literal["toy"] = "toy"
    multi_label: bool = False
    class_weights: None = None
    threshold: float = 0.5
    tune_thresholds: bool = False
'''
TOY_TASK = '''
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.common.classifier import ClassifierTask
from graftkit.tasks.common.classifier.capabilities import ClassifierDecoding, ClassifierLabels, ClassifierTraining
from toytask.config import ToyConfig


class ToyCard(StandardCard):
    hub_pipeline = None


class ToyTask(ClassifierTask):
    """The shared classifier with only some capabilities: trains, predicts, names its labels."""

    name = "toy"
    config_class = ToyConfig
    capabilities = (ClassifierTraining, ClassifierDecoding, ClassifierLabels, ToyCard)
'''
TOY = Kind("toy", {"type": "toy"}, _csv(CLASSES, ("text", "label")), [r[0] for r in CLASSES])


@pytest.fixture(scope="module")
def toy_registered(tmp_path_factory):
    """The toy task: one folder written now, one registry line; unregistered afterwards."""
    root = tmp_path_factory.mktemp("toy-plugin")
    package = root / "toytask"
    package.mkdir()
    (package / "config.py").write_text(textwrap.dedent(TOY_CONFIG), encoding="utf-8")
    (package / "__init__.py").write_text(textwrap.dedent(TOY_TASK), encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        import toytask

        TASKS.register("toy")(toytask.ToyTask)
        yield toytask.ToyTask
    finally:
        TASKS.unregister("toy")
        sys.path.remove(str(root))
        sys.modules.pop("toytask", None)
        sys.modules.pop("toytask.config", None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    return MatrixRuns(tmp_path_factory.mktemp("matrix"), tiny_model_dir)


@pytest.fixture(scope="module")
def clients():
    """One running service per run folder, shared by the route cells."""
    opened: dict[Path, TestClient] = {}
    yield opened
    for client in opened.values():
        client.__exit__(None, None, None)


@dataclass
class Cell:
    kind: Kind
    task_cls: type
    name: str
    runs: MatrixRuns
    tmp: Path
    clients: dict

    @property
    def supported(self) -> bool:
        return ENTRIES[self.name].supported_by(self.task_cls)

    @property
    def run(self) -> Path:
        return self.runs.run(self.kind)

    @property
    def pairs(self) -> bool:
        return isinstance(self.kind.inputs[0], tuple)

    def cli(self, *args):
        return self.runs.cli.invoke(app, [str(a) for a in args])

    def client(self) -> TestClient:
        if self.run not in self.clients:
            client = TestClient(create_app(self.run, ServeConfig(api_keys=[KEY], log_level="warning")))
            client.__enter__()
            self.clients[self.run] = client
        return self.clients[self.run]

    def predict_args(self) -> list:
        texts = [x[0] if self.pairs else x for x in self.kind.inputs]
        pairs = [a for x in self.kind.inputs for a in ("--pair", x[1])] if self.pairs else []
        return [*texts, *pairs]


# -- what a prediction must satisfy, whatever produced it ------------------------------------------
def assert_valid(prediction: dict, x) -> None:
    """A real property of each kind of prediction."""
    if "label" in prediction:
        assert prediction["label"] == max(prediction["scores"], key=prediction["scores"].get)
        assert math.isclose(sum(prediction["scores"].values()), 1.0, abs_tol=1e-4)
    elif "entities" in prediction:
        for e in prediction["entities"]:
            assert (x[0] if isinstance(x, tuple) else x)[e["start"]:e["end"]] == e["text"]
    elif "value" in prediction:
        assert math.isfinite(prediction["value"])
    elif "embedding" in prediction:
        assert math.isclose(float(np.linalg.norm(prediction["embedding"])), 1.0, abs_tol=1e-4)
    elif "masks" in prediction or "masked" in prediction:
        for m in prediction.get("masks", []):
            probs = [c["score"] for c in m["candidates"]]
            assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    elif "reward" in prediction:
        assert math.isfinite(prediction["reward"])
    elif "generated" in prediction:
        assert isinstance(prediction["generated"], str)
    else:
        assert -1.0 - 1e-6 <= prediction["score"] <= 1.0 + 1e-6  # two-tower cosine


def same_predictions(a: list[dict], b: list[dict], tol: float = 1e-4) -> None:
    """Equal predictions: the same labels, entity spans and texts; floats within ``tol``."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):  # summed scores (a masked LM's NLL) need a relative tolerance too
                assert x[k] == pytest.approx(y[k], rel=tol, abs=tol), k
            elif isinstance(x[k], dict):
                assert x[k] == pytest.approx(y[k], abs=tol), k
            elif k == "entities":
                assert [(e["label"], e["start"], e["end"]) for e in x[k]] == \
                       [(e["label"], e["start"], e["end"]) for e in y[k]]
            elif k == "embedding":
                np.testing.assert_allclose(x[k], y[k], atol=tol)
            elif k != "masks":
                assert x[k] == y[k], k


def without_input(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "input"} for line in lines]


# -- the cells -------------------------------------------------------------------------------------
def cell_train(c: Cell):
    run = c.run
    metrics = json.loads((run / "metrics.json").read_text())
    assert (run / "COMPLETE").is_file() and metrics["test"]
    assert "## Use" in (run / "README.md").read_text()


def cell_evaluate(c: Cell):
    data = c.runs.labelled(c.kind)
    res = c.cli("evaluate", c.run, "--data", data)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    result = json.loads((c.run / "metrics.json").read_text())["evaluations"][str(data)]
    written = (c.run / "eval" / data.stem / "predictions.jsonl").read_text().splitlines()
    assert result["n"] == len(written) > 0


def cell_predict(c: Cell):
    res = c.cli("predict", c.run, *c.predict_args())
    assert res.exit_code == 0, res.output
    lines = without_input(json_lines(res.stdout))
    same_predictions(lines, predictions_of(c.run, c.kind.inputs))
    for line, x in zip(lines, c.kind.inputs):
        assert_valid(line, x)
    text_column, pair_column = open_run(c.run).input_columns()
    rows = [{text_column: x[0], pair_column: x[1]} if c.pairs else {text_column: x} for x in c.kind.inputs]
    src = c.tmp / "inputs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = c.tmp / "out.jsonl"
    res = c.cli("predict", c.run, "--input", src, "--output", out)
    assert res.exit_code == 0, res.output
    same_predictions(without_input(json_lines(out.read_text())), lines)


def cell_generate(c: Cell):
    prompt = c.kind.inputs[0] if isinstance(c.kind.inputs[0], str) else c.kind.inputs[0][0]
    res = c.cli("generate", c.run, prompt)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == predictions_of(c.run, [prompt])[0]["generated"].strip()


def cell_explain(c: Cell):
    x = c.kind.inputs[0]
    text, pair = (x if c.pairs else (x, None))
    res = c.cli("explain", c.run, text, "--steps", "4", *(["--pair", pair] if pair else []))
    if not c.supported:
        return res
    from graftkit.evaluate.explain import Explainer

    assert res.exit_code == 0, res.output
    explainer = Explainer(c.run, steps=4, max_steps=4)
    blocks = explainer.blocks(explainer.explain(text, pair))
    assert blocks
    for block in (b for b in blocks if b.words):
        assert all(w["text"] in (text + " " + (pair or "")) for w in block.words)
        assert math.isfinite(block.delta)


def cell_robustness(c: Cell):
    out = c.tmp / "robustness.json"
    res = c.cli("robustness", c.run, "--data", c.runs.labelled(c.kind), "--max-rows", 2, "--out", out)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert report["rows"] == 2 and report["perturbations"]  # every labelled file here has more rows
    for p in report["perturbations"].values():
        change = p.get("flip_rate", p.get("mean_abs_change"))
        assert change >= 0 and ("flip_rate" not in p or change <= 1)


def cell_inspect(c: Cell):
    cfg = c.runs.config(c.kind, "inspect", train={"epochs": 1})
    res = c.cli("inspect", cfg, "--find-label-errors", "--folds", 2, "--out", c.tmp / "inspect")
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    summary = json.loads((c.tmp / "inspect" / "label_issues.json").read_text())
    listed = (c.tmp / "inspect" / "label_issues.csv").read_text().strip().splitlines()[1:]
    assert summary["rows"] > 0 and summary["flagged_count"] == len(listed) <= summary["rows"]


def cell_export(c: Cell):
    # the int8 metric gate is tested on a real model in tests/test_export.py; a six-row overfit model can lose
    # one row to quantisation, so here the int8 graph must exist and predict validly
    res = c.cli("export", c.run, "--quantize", "int8", "--int8-tolerance", 1.0)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    parity = json.loads((c.run / "onnx" / "parity.json").read_text())
    assert parity["passed"] and parity["backends"]["onnx_fp32"]["logits_max_abs_diff"] <= 1e-3
    res = c.cli("predict", c.run, *c.predict_args(), "--backend", "onnx")
    assert res.exit_code == 0, res.output
    same_predictions(without_input(json_lines(res.stdout)), predictions_of(c.run, c.kind.inputs), tol=1e-3)
    res = c.cli("predict", c.run, *c.predict_args(), "--backend", "onnx", "--precision", "int8")
    assert res.exit_code == 0, res.output
    for line, x in zip(without_input(json_lines(res.stdout)), c.kind.inputs):
        assert_valid(line, x)


def cell_ensemble(c: Cell):
    out = c.tmp / "ensemble"
    res = c.cli("ensemble", c.run, c.run, "--out", out)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    same_predictions(predictions_of(out, c.kind.inputs), predictions_of(c.run, c.kind.inputs))


def cell_distill(c: Cell):
    cfg = c.runs.config(c.kind, "student", train={"epochs": 2, "distill": {"teacher": str(c.run), "alpha": 0.5}})
    res = c.cli("train", cfg)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    report = json.loads((cfg.parent / "runs" / "student" / "metrics.json").read_text())["distillation"]
    assert report["teacher"] == str(c.run) and 0 < report["retention"] < 10
    assert report["student_parameters"] == report["teacher_parameters"]


def _fresh_inputs(c: Cell) -> list:
    """The kind's inputs made new (a pool must not repeat labelled rows): a word added to each text."""
    return [(f"{x[0]} again", x[1]) if c.pairs else f"{x} again" for x in c.kind.inputs]


def cell_few_shot(c: Cell):
    cfg = c.runs.config(c.kind, "few-shot", train={"strategy": "few_shot", "epochs": 1, "max_steps": 4})
    res = c.cli("train", cfg)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    metrics = json.loads((cfg.parent / "runs" / "few-shot" / "metrics.json").read_text())
    assert metrics["strategy"]["chosen"] == "few_shot" and metrics["test"]
    for line, x in zip(predictions_of(cfg.parent / "runs" / "few-shot", c.kind.inputs), c.kind.inputs):
        assert_valid(line, x)


def cell_self_training(c: Cell):
    pool = c.tmp / "pool.txt"
    pool.write_text("".join((x[0] if c.pairs else x) + "\n" for x in _fresh_inputs(c)), encoding="utf-8")
    cfg = c.runs.config(c.kind, "self-trained", train={"self_training": {"unlabelled": str(pool), "rounds": 1,
                                                                         "min_confidence": 0.0, "precision": 0.01}})
    res = c.cli("train", cfg)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    run = cfg.parent / "runs" / "self-trained"
    record = json.loads((run / "self_training.json").read_text())
    assert [r["round"] for r in record["rounds"]][:1] == [0] and record["chosen_round"] in range(2)
    for line, x in zip(predictions_of(run, c.kind.inputs), c.kind.inputs):
        assert_valid(line, x)


def cell_label_select(c: Cell):
    pool = c.tmp / "pool.jsonl"
    text_column, pair_column = ("text", None) if not c.supported else open_run(c.run).input_columns()
    rows = [{text_column: x[0], pair_column: x[1]} if c.pairs else {text_column: x} for x in _fresh_inputs(c)]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = c.cli("label", "select", c.run, "--pool", pool, "--k", 2, "--out", c.tmp / "next.csv")
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    with (c.tmp / "next.csv").open(encoding="utf-8") as fh:
        picked = list(csv.DictReader(fh))
    labels = json.loads((c.run / "labels.json").read_text())["labels"]
    assert len(picked) == 2 and all(r["suggested"] in labels and r[text_column] for r in picked)


def cell_merge(c: Cell):
    if not c.supported:
        return c.cli("merge", c.run)
    lora = c.runs.lora(c.kind)
    res = c.cli("merge", lora)
    assert res.exit_code == 0, res.output
    merged = lora / "merged"
    assert not (merged / "adapter_config.json").exists()
    if c.task_cls.has(Generates):  # a barely trained decoder's greedy text flips on float noise: compare its logits
        np.testing.assert_allclose(forward_logits(merged, c.kind.inputs), forward_logits(lora, c.kind.inputs),
                                   atol=1e-4)
        return
    same_predictions(predictions_of(merged, c.kind.inputs), predictions_of(lora, c.kind.inputs))


def cell_index(c: Cell):
    corpus = write_csv(c.tmp / "corpus.csv", [[str(i), d] for i, d in enumerate(DOCS)], header=("id", "text"))
    res = c.cli("index", c.run, "--corpus", corpus)
    if not c.supported:
        return res
    assert res.exit_code == 0, res.output
    res = c.cli("search", c.run, DOCS[2], "-k", 2)
    hits = json.loads(res.stdout)["hits"]
    assert hits[0]["text"] == DOCS[2] and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


def cell_recommend(c: Cell):
    items = sorted({r[1] for r in CLICKS})
    candidates = write_csv(c.tmp / "items.csv", [[str(i), t] for i, t in enumerate(items)], header=("id", "text"))
    res = c.cli("recommend", c.run, "--candidates", candidates, "--history", "sports news", "--history",
                "football scores")
    if not c.supported:
        return res
    from graftkit.apps.recommend.ranker import Recommender

    assert res.exit_code == 0, res.output
    ranked = [json.loads(line)["text"] for line in res.stdout.strip().splitlines()]
    scores = Recommender(c.run).scores(["sports news", "football scores"], items)
    assert ranked == [items[i] for i in np.argsort(-scores, kind="stable")]


def cell_push(c: Cell):
    res = c.cli("push", c.run, "--repo-id", "someone/some-run", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "labels.json" in res.stdout and "README.md" in res.stdout and "checkpoints" not in res.stdout


def cell_info(c: Cell):
    res = c.cli("info", c.run)
    assert res.exit_code == 0, res.output
    assert "complete" in res.stdout and c.task_cls.name in res.stdout


def route_predict(c: Cell):
    texts = [x[0] if c.pairs else x for x in c.kind.inputs]
    body = {"texts": texts, **({"text_pairs": [x[1] for x in c.kind.inputs]} if c.pairs else {})}
    r = c.client().post("/v1/predict", json=body, headers=AUTH)
    if not c.supported:
        return r
    assert r.status_code == 200, r.text
    same_predictions(r.json()["predictions"], predictions_of(c.run, c.kind.inputs))


def route_explain(c: Cell):
    x = c.kind.inputs[0]
    body = {"text": x[0], "text_pair": x[1], "steps": 4} if c.pairs else {"text": x, "steps": 4}
    r = c.client().post("/v1/explain", json=body, headers=AUTH)
    if not c.supported:
        return r
    assert r.status_code == 200, r.text
    assert r.json()["blocks"] and r.json()["explanation"]["task"] == c.task_cls.name


def route_generate(c: Cell):
    prompt = c.kind.inputs[0] if isinstance(c.kind.inputs[0], str) else c.kind.inputs[0][0]
    r = c.client().post("/v1/generate", json={"prompt": prompt}, headers=AUTH)
    if not c.supported:
        return r
    assert r.status_code == 200, r.text
    assert r.json()["generated"].strip() == predictions_of(c.run, [prompt])[0]["generated"].strip()


def route_embed(c: Cell):
    texts = [x[0] if c.pairs else x for x in c.kind.inputs]
    r = c.client().post("/v1/embed", json={"texts": texts}, headers=AUTH)
    if not c.supported:
        return r
    assert r.status_code == 200, r.text
    vectors = np.array(r.json()["embeddings"])
    np.testing.assert_allclose(vectors, [p["embedding"] for p in predictions_of(c.run, texts)], atol=1e-4)


CELLS = {"train": cell_train, "evaluate": cell_evaluate, "predict": cell_predict, "generate": cell_generate,
         "explain": cell_explain, "robustness": cell_robustness, "inspect --find-label-errors": cell_inspect,
         "export": cell_export, "ensemble": cell_ensemble, "train.distill": cell_distill,
         "train.strategy": cell_few_shot, "train.self_training": cell_self_training, "label select": cell_label_select,
         "merge": cell_merge,
         "index": cell_index, "recommend": cell_recommend, "push": cell_push, "info": cell_info,
         "POST /v1/predict": route_predict, "POST /v1/explain": route_explain, "POST /v1/generate": route_generate,
         "POST /v1/embed": route_embed}


def assert_refused(result, label: str) -> None:
    """One line that names the task and what it supports; no traceback, no server error."""
    if hasattr(result, "status_code"):  # a route
        assert result.status_code == 400, result.text
        message = result.json()["error"]
    else:
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        message = lines[0]
    assert "\n" not in message and "Traceback" not in message and "NotImplementedError" not in message
    assert f"{label} runs" in message and "support" in message, message


def test_every_matrix_entry_has_a_cell():
    assert list(CELLS) == [e.name for e in MATRIX]


def test_every_registered_task_has_a_kind():
    assert sorted(k.label for k in KINDS) == sorted(c.label() for c in TASKS.classes())


def test_the_readme_table_is_generated_from_the_registry():
    from graftkit.tasks.matrix_doc import render

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert render(readme) == readme, "README.md's task table is stale: python -m graftkit.tasks.matrix_doc --write README.md"


def _walk(kind: Kind, task_cls, name: str, runs, tmp_path, clients):
    cell = Cell(kind, task_cls, name, runs, tmp_path, clients)
    result = CELLS[name](cell)
    if not cell.supported:
        assert_refused(result, kind.label)


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in MATRIX])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.slug)
def test_matrix(kind, name, runs, tmp_path, clients):
    task_cls = next(c for c in TASKS.classes() if c.label() == kind.label)
    _walk(kind, task_cls, name, runs, tmp_path, clients)


@pytest.mark.parametrize("name", [e.name for e in MATRIX])
def test_a_toy_task_from_a_temporary_folder_walks_the_same_matrix(name, toy_registered, runs, tmp_path, clients):
    _walk(TOY, toy_registered, name, runs, tmp_path, clients)
