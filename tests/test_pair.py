"""Pair classification (cross-encoder) end to end: train on (text, pair), save, reload, CLI --pair, bad pairs."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import run_config, write_csv
from graftkit.cli import app
from graftkit.errors import DataError, GraftkitError
from graftkit.inference.predict_file import iter_inputs, pair_inputs
from graftkit.inference.predictor import Predictor
from graftkit.inference.retrieval.rerank import CrossEncoderReranker
from graftkit.train.trainer import prepare, train

PAIRS = [["how do i reset my pin", "how can i change my pin", "1"],
         ["how do i reset my pin", "where is my new card", "0"],
         ["my card was stolen", "someone took my card", "1"],
         ["my card was stolen", "what is the exchange rate", "0"],
         ["why is my transfer pending", "transfer not arrived yet", "1"],
         ["why is my transfer pending", "close my account", "0"]]
HEADER = ("question", "candidate", "duplicate")


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("pair")
    path = write_csv(tmp / "pairs.csv", PAIRS * 2, header=HEADER)
    cfg = run_config(tmp, tiny_model_dir, path,
                     data={"text_column": "question", "text_pair_column": "candidate", "label_column": "duplicate",
                           "validation": str(path), "test": str(path)},
                     train={"epochs": 40, "batch_size": 12, "learning_rate": 3e-3,
                            "eval_strategy": "steps", "eval_steps": 1000})  # no per-epoch eval/save: faster
    return train(cfg, log=lambda m: None)


def test_overfit_save_reload(pair_run):
    assert json.loads(pair_run.metrics.read_text())["test"]["accuracy"] == 1.0
    pred = Predictor(pair_run.path)
    inputs = [(a, b) for a, b, _ in PAIRS]
    batch = pred.predict(inputs, batch_size=4)
    single = [pred.predict([x])[0] for x in inputs]
    assert [p.label for p in batch] == [lab for _, _, lab in PAIRS]
    for b, s in zip(batch, single):
        assert b.label == s.label and b.score == pytest.approx(s.score, abs=1e-5)
    # the order inside a pair matters to the encoder input: (a, b) is encoded as one sequence pair
    predictions = [json.loads(x) for x in (pair_run.predictions / "test" / "predictions.jsonl").read_text().splitlines()]
    assert predictions[0]["input"] == list(inputs[0])


def test_cli_predict_with_pair(pair_run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(pair_run.path), PAIRS[0][0], "--pair", PAIRS[0][1],
                              PAIRS[1][0], "--pair", PAIRS[1][1]])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [x["label"] for x in lines] == ["1", "0"] and lines[0]["input"] == PAIRS[0][:2]
    missing = runner.invoke(app, ["predict", str(pair_run.path), "a question"])
    assert missing.exit_code == 2 and "--pair" in missing.output
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"question": a, "candidate": b}) + "\n" for a, b, _ in PAIRS))
    res = runner.invoke(app, ["predict", str(pair_run.path), "--input", str(jsonl), "--output", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [x["label"] for x in out] == [lab for _, _, lab in PAIRS]


def test_rerank_orders_by_cross_encoder(pair_run):
    reranker = CrossEncoderReranker(Predictor(pair_run.path))
    assert reranker.positive == "1"
    hits = [{"id": "a", "text": "where is my new card", "score": 0.9, "rank": 1},
            {"id": "b", "text": "how can i change my pin", "score": 0.5, "rank": 2}]
    out = reranker.rerank("how do i reset my pin", hits)
    assert [h["id"] for h in out] == ["b", "a"] and [h["rank"] for h in out] == [1, 2]
    assert out[0]["rerank_score"] > out[1]["rerank_score"]


def test_empty_side_of_pair_names_file_and_line(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "p.csv", [PAIRS[0], PAIRS[1], ["how do i reset my pin", "  ", "1"]], header=HEADER)
    cfg = run_config(tmp_path, tiny_model_dir, path,
                     data={"text_column": "question", "text_pair_column": "candidate", "label_column": "duplicate"})
    with pytest.raises(DataError, match="empty text") as exc:
        prepare(cfg)
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(path), 4, "candidate")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "a", "candidate": "b"}) + "\n" + json.dumps({"question": "", "candidate": "b"}) + "\n")
    with pytest.raises(DataError, match="line 2.*empty text"):
        list(iter_inputs(bad, "question", "candidate"))
    with pytest.raises(DataError, match="text pairs"):
        list(iter_inputs(_txt(tmp_path), "question", "candidate"))


def _txt(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("just one text\n")
    return p


def test_pair_inputs_checks_counts():
    assert pair_inputs(["a"], ["b"], "pair") == [("a", "b")]
    assert pair_inputs(["a"], None, None) == ["a"]
    with pytest.raises(GraftkitError, match="one --pair per text"):
        pair_inputs(["a", "b"], ["c"], "pair")
    with pytest.raises(GraftkitError, match="single texts"):
        pair_inputs(["a"], ["b"], None)
    with pytest.raises(GraftkitError, match="empty side"):
        pair_inputs(["a"], [" "], "pair")
