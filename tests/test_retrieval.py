"""Bi-encoder training, the exact-cosine index, search, the intent + FAQ answerer and bad corpora."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO, run_config, write_csv
from graftkit.cli import app
from graftkit.errors import ConfigError, DataError, RunFolderError, UnsupportedError
from graftkit.inference.retrieval import Answerer, Index, build_index, read_corpus
from graftkit.tasks import TASKS
from graftkit.tasks.common.bi_encoder import embed, load_model
from graftkit.tasks.embedding import preprocess
from graftkit.tasks.predictions import LabelPrediction
from graftkit.train.trainer import train

FAQ = REPO / "examples" / "customer_service_faq.csv"
QUERIES = [("i forgot my pin", "How do I reset my card PIN?"),
           ("change my pin number", "How do I reset my card PIN?"),
           ("my card was stolen", "What should I do if my card is lost or stolen?"),
           ("i lost my wallet and card", "What should I do if my card is lost or stolen?"),
           ("transfer still pending", "Why is my transfer still pending?"),
           ("money sent yesterday not received", "Why is my transfer still pending?"),
           ("close my account please", "How do I close my account?"),
           ("delete my account", "How do I close my account?")]


def _margins(model) -> np.ndarray:
    """Per query: cosine to its positive minus the best cosine to another positive (a negative)."""
    positives = sorted({p for _, p in QUERIES})
    q = embed(model, [a for a, _ in QUERIES])
    d = embed(model, positives)
    sims = q @ d.T
    own = np.array([positives.index(p) for _, p in QUERIES])
    pos = sims[np.arange(len(QUERIES)), own]
    sims[np.arange(len(QUERIES)), own] = -np.inf
    return pos - sims.max(axis=1)


@pytest.fixture(scope="module")
def emb_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("emb")
    path = write_csv(tmp / "pairs.csv", [list(x) for x in QUERIES] * 3, header=("query", "question"))
    cfg = run_config(tmp, tiny_model_dir, path, task={"type": "embedding"},
                     data={"text_column": "query", "text_pair_column": "question",
                           "split": {"validation": 0.0, "test": 0.0}},
                     train={"epochs": 4, "batch_size": 8, "learning_rate": 2e-3})
    return train(cfg, log=lambda m: None)


def test_bi_encoder_brings_query_closer_to_positive(emb_run, tiny_model_dir):
    before = _margins(load_model(tiny_model_dir))
    after = _margins(load_model(str(emb_run.path)))
    assert after.mean() > before.mean()
    assert (after > 0).mean() >= 0.75  # most queries now rank their positive above every negative
    state = json.loads(emb_run.labels.read_text())
    assert state == {"task": "embedding", "mode": "pairs", "similarity": "cosine"}
    for name in ("config.yaml", "metrics.json", "README.md", "COMPLETE", "model.safetensors", "modules.json"):
        assert (emb_run.path / name).is_file(), name
    assert "MultipleNegativesRankingLoss" in (emb_run.path / "README.md").read_text()


def test_retrieval_set_and_metrics_in_label_mode():
    from graftkit.data.dataset import Example

    train_rows = [Example("a1", "A"), Example("a2", "A"), Example("b1", "B")]
    data = preprocess.retrieval_set([Example("qa", "A"), Example("qb", "B")], train_rows, label_mode=True)
    assert data.relevant == {"q0": {"c0", "c1"}, "q1": {"c2"}}
    anchors, positives, skipped = preprocess.training_pairs(train_rows, True, seed=0)
    assert anchors == ["a1", "a2"] and positives == ["a2", "a1"] and skipped == 1


def test_index_search_returns_exact_nearest_neighbour(emb_run, tmp_path):
    corpus = write_csv(tmp_path / "toy.csv", [[f"d{i}", t] for i, t in enumerate(
        ["reset a card pin", "lost card", "pending transfer", "exchange rates", "close an account", "refunds"])],
        header=("id", "text"))
    path = build_index(emb_run.path, corpus)
    assert sorted(p.name for p in path.iterdir()) == ["entries.json", "meta.json", "vectors.safetensors"]
    index = Index(emb_run.path)
    queries = ["how do i reset my pin", "my transfer is pending", "lost card"]
    hits = index.search(queries, k=3)
    docs = [e["text"] for e in index.entries]
    sims = index.embedder.vectors(queries) @ index.embedder.vectors(docs).T  # brute force for comparison
    for row, h in zip(sims, hits):
        assert [x["id"] for x in h] == [f"d{i}" for i in np.argsort(-row, kind="stable")[:3]]
        assert h[0]["score"] == pytest.approx(float(row.max()), abs=1e-5)
    assert hits[2][0]["id"] == "d1" and hits[2][0]["score"] == pytest.approx(1.0, abs=1e-5)  # the exact text


def test_bad_corpora_name_file_and_line(tmp_path, emb_run):
    dup = write_csv(tmp_path / "dup.csv", [["a", "one"], ["b", "two"], ["a", "three"]], header=("id", "text"))
    with pytest.raises(DataError, match="duplicate id 'a' \\(first on line 2\\)") as exc:
        read_corpus(dup)
    assert (exc.value.line, exc.value.field) == (4, "id")
    empty = write_csv(tmp_path / "empty.csv", [["a", "one"], ["b", ""]], header=("id", "text"))
    with pytest.raises(DataError, match="line 3, field 'text': empty text"):
        read_corpus(empty)
    with pytest.raises(DataError, match="missing column 'question'"):
        read_corpus(dup, text_column="question")
    assert [e["id"] for e in read_corpus(dup, id_column=None)] == ["2", "3", "4"]  # ids from line numbers
    res = CliRunner().invoke(app, ["index", str(emb_run.path), "--corpus", str(dup)])
    assert res.exit_code == 2 and "duplicate id" in res.output


class _Detector:
    """A fitted detector's one property the answer reads: (its name, its threshold)."""

    chosen = ("energy", 2.0)


class _Intent:
    """A stand-in intent predictor with a fixed answer, to test the threshold exactly: a real single-label
    classification task (``task.optional(ScoresLabels)`` answers as for a run) and typed predictions; with
    ``oos_score``, a run whose detector (energy, threshold 2.0) gave that score."""

    def __init__(self, label, score, oos_score=None):
        self.task = TASKS.get("classification")()
        self.task.load_state({"labels": [label, "other"], "multi_label": False})
        self.run = type("Run", (), {"path": "runs/intent"})()
        self.detector = _Detector() if oos_score is not None else None
        self.out = LabelPrediction(label, score, {label: score, "other": round(1 - score, 6)},
                                   None if oos_score is None else oos_score > 2.0, oos_score)

    def predict(self, inputs):
        return [self.out for _ in inputs]


def test_answer_out_of_scope_below_threshold(emb_run):
    build_index(emb_run.path, FAQ, text_column="question", name="faq")
    index = Index(emb_run.path, "faq")
    low = Answerer(_Intent("change_pin", 0.42), index, threshold=0.5)("what's the weather like")
    assert low["out_of_scope"] is True and low["answers"] == [] and low["intent"] is None
    assert low["closest_intent"] == "change_pin" and "not sure" in low["message"]
    assert low["decided_by"] == "confidence" and "confidence 0.42 is below 0.50" in low["reason"]
    assert Answerer(_Intent("change_pin", 0.42), index)("hm")["out_of_scope"] is True  # 0.5 by default
    high = Answerer(_Intent("change_pin", 0.91), index, threshold=0.5, k=2)("i forgot my pin")
    assert high["out_of_scope"] is False and high["intent"] == "change_pin" and high["confidence"] == 0.91
    assert len(high["answers"]) == 2 and high["answers"][0]["intent"] == "change_pin"
    assert high["message"] == high["answers"][0]["answer"]
    strict = Answerer(_Intent("change_pin", 0.91), index, threshold=0.5, min_score=1.01)("i forgot my pin")
    assert strict["out_of_scope"] is True and "min_score" in strict["reason"]  # confident intent, no close FAQ
    assert strict["decided_by"] == "similarity"


def test_answer_uses_the_runs_detector_not_the_confidence(emb_run):
    build_index(emb_run.path, FAQ, text_column="question", name="faq")
    index = Index(emb_run.path, "faq")
    # confident (0.97) yet out of scope: the detector's score 3.5 is over the run's threshold 2.0
    off = Answerer(_Intent("change_pin", 0.97, oos_score=3.5), index)("what is the capital of france")
    assert off["out_of_scope"] is True and off["answers"] == [] and off["decided_by"] == "detector"
    assert "fits none of the intents (energy score 3.50 > threshold 2.00)" in off["reason"]
    # unsure (0.3) yet in scope by the detector: answered
    kept = Answerer(_Intent("change_pin", 0.3, oos_score=1.0), index)("pin?")
    assert kept["out_of_scope"] is False and kept["out_of_scope_score"] == 1.0 and kept["threshold"] == 2.0
    moved = Answerer(_Intent("change_pin", 0.97, oos_score=3.5), index, oos_threshold=4.0)("hm")
    assert moved["out_of_scope"] is False  # the run's threshold overridden
    with pytest.raises(ConfigError, match="--threshold: intent run runs/intent decides by its out-of-scope detector"):
        Answerer(_Intent("change_pin", 0.97, oos_score=3.5), index, threshold=0.5)
    with pytest.raises(ConfigError, match="--oos-threshold: intent run runs/intent has no out-of-scope detector"):
        Answerer(_Intent("change_pin", 0.97), index, oos_threshold=1.0)


def test_answer_cli_end_to_end(emb_run, tmp_path, tiny_model_dir):
    intents = REPO / "examples" / "customer_service_intents.csv"
    cfg = run_config(tmp_path, tiny_model_dir, intents, data={"label_column": "intent"},
                     train={"max_steps": 2})
    intent_run = train(cfg, log=lambda m: None)
    build_index(emb_run.path, FAQ, text_column="question", name="faq")
    runner = CliRunner()
    args = ["answer", "i forgot my pin", "--intent-run", str(intent_run.path), "--retriever", str(emb_run.path),
            "--name", "faq"]
    never = json.loads(runner.invoke(app, args + ["--threshold", "1.0"]).stdout)
    assert never["out_of_scope"] is True and never["answers"] == []
    always = json.loads(runner.invoke(app, args + ["--threshold", "0.0", "-k", "2"]).stdout)
    assert always["out_of_scope"] is False and len(always["answers"]) == 2
    res = runner.invoke(app, ["search", str(emb_run.path), "how do i reset my card pin", "--name", "faq", "-k", "1"])
    assert res.exit_code == 0 and json.loads(res.stdout)["hits"][0]["rank"] == 1
    wrong = runner.invoke(app, ["index", str(intent_run.path), "--corpus", str(FAQ), "--text-column", "question"])
    assert wrong.exit_code == 2 and "index: classification runs do not support this" in wrong.output
    with pytest.raises(RunFolderError, match="no index named"):
        Index(emb_run.path, "missing")
    # the logits Predictor refuses an embedding run in one line pointing to what does serve it
    with pytest.raises(UnsupportedError, match=r"embedding run: it does not predict through a logits backend"):
        from graftkit.inference.predictor import Predictor

        Predictor(emb_run.path).predict(["x"])


def test_embedding_refuses_trainer_only_switches(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "pairs.csv", [list(x) for x in QUERIES], header=("query", "question"))
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "embedding"}, peft={"method": "lora"},
                     data={"text_column": "query", "text_pair_column": "question"},
                     train={"rdrop": 1.0, "freeze": {"layers": 1}})
    with pytest.raises(ConfigError, match=r"^train\.freeze\.layers, train\.rdrop, peft: embedding runs \(trained by "
                                          r"sentence-transformers\) do not apply them"):
        train(cfg, log=lambda m: None)
    assert not cfg.run_dir.exists()  # refused before the run folder is made
