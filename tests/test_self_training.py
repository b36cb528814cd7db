"""train.self_training: per-class thresholds and balanced selection on planted predictions, an ordinary run folder
with its rounds recorded, NER's whole-entity rows, the consistency term, the refusals, and a resume after a kill
that ends as the uninterrupted run did."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import REPO, run_config, write_csv
from graftkit.config import SelfTrainingConfig
from graftkit.data.dataset import Example
from graftkit.errors import ConfigError, GraftkitError, UnsupportedError
from graftkit.inference.runs import open_run
from graftkit.modeling.divergence import softmax_divergence
from graftkit.tasks import build_task
from graftkit.tasks.capabilities import PseudoLabel, SelfTrains
from graftkit.tasks.classification.config import ClassificationConfig
from graftkit.tasks.predictions import LabelPrediction
from graftkit.train.consistency import Consistency
from graftkit.train.pseudo_labels import balanced_selection, class_thresholds
from graftkit.train.trainer import train
from test_few_shot import planted  # two classes told apart only by their word groups
from test_ner_train import SENTENCES, write_jsonl

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp, rng = tmp_path_factory.mktemp("self-training-data"), random.Random(1)
    pool = planted(30, rng)
    return {"train": write_csv(tmp / "train.csv", planted(4, rng)), "validation": write_csv(tmp / "val.csv", planted(6, rng)),
            "test": write_csv(tmp / "test.csv", planted(10, rng)),
            "pool": write_csv(tmp / "pool.csv", [[t] for t, _ in pool], header=("text",))}


def config(tmp, model, files, **self_training):
    return run_config(tmp, model, files["train"], data={"validation": str(files["validation"]), "test": str(files["test"])},
                      train={"epochs": 10, "learning_rate": 5e-3,
                             "self_training": {"unlabelled": str(files["pool"]), "rounds": 2, **self_training}},
                      eval={"plots": False, "robustness_rows": 0})


def guess(label: str, score: float) -> LabelPrediction:
    return LabelPrediction(label=label, score=score, scores={label: score})


def test_thresholds_are_the_lowest_confidence_keeping_each_class_precise():
    learner = build_task(ClassificationConfig()).capability(SelfTrains, "train.self_training")
    gold = [Example("x", "a")] * 4 + [Example("y", "a"), Example("y", "b")]
    # class a, most confident first: right, right, wrong, right -> precision 1, 1, 0.67, 0.75
    # class b: its most confident prediction is wrong, then right -> 0, 0.5
    predicted = [guess("a", 0.95), guess("a", 0.9), guess("b", 0.99), guess("a", 0.7), guess("a", 0.8), guess("b", 0.5)]
    gold = [Example("1", "a"), Example("2", "a"), Example("3", "a"), Example("4", "a"), Example("5", "b"),
            Example("6", "b")]
    assert class_thresholds(learner, gold, predicted, precision=0.75, floor=0.1) == {"a": 0.7, "b": 1.0}
    assert class_thresholds(learner, gold, predicted, precision=0.9, floor=0.1)["a"] == 0.9
    assert class_thresholds(learner, gold, predicted, precision=0.75, floor=0.85)["a"] == 0.85


def test_selection_adds_only_rows_over_their_threshold_and_the_same_number_per_class():
    def pseudo(label, confidence):
        return PseudoLabel(Example(f"{label}{confidence}", label), confidence, label)
    candidates = ([pseudo("a", 0.5 + i / 100) for i in range(40)] + [pseudo("b", 0.99)]  # b: under its threshold
                  + [pseudo("c", 0.7), pseudo("c", 0.65), pseudo("c", 0.61), pseudo("c", 0.3)])
    chosen = balanced_selection(candidates, {"a": 0.8, "b": 1.0}, floor=0.6, cap=5)
    assert chosen.per_class == {"a": 3, "c": 3} and chosen.passing == {"a": 10, "c": 3}
    picked = {c.key: sorted(p.confidence for p in chosen.rows if p.key == c.key) for c in chosen.rows}
    assert picked["a"] == [0.87, 0.88, 0.89] and picked["c"] == [0.61, 0.65, 0.7]
    assert balanced_selection(candidates, {"a": 0.8, "b": 1.0}, floor=0.6, cap=2).per_class == {"a": 2, "c": 2}
    assert balanced_selection([pseudo("b", 0.9)], {"b": 1.0}, floor=0.5, cap=3).rows == []


@pytest.fixture(scope="module")
def self_trained(tmp_path_factory, tiny_model_dir, files):
    lines: list[str] = []
    run = train(config(tmp_path_factory.mktemp("self-trained"), tiny_model_dir, files), log=lines.append)
    return run, lines


def test_a_self_training_run_records_its_rounds_and_is_an_ordinary_run(self_trained, files):
    run, lines = self_trained
    record = json.loads((run.path / "self_training.json").read_text())
    metrics = json.loads(run.metrics.read_text())
    assert metrics["self_training"] == record and record["metric"] == "macro_f1"
    first, *later = record["rounds"]
    assert first["round"] == 0 and first["added"] == 0 and first["train_rows"] == 8 and later
    for r in later:
        added = [json.loads(line) for line in
                 (run.path / "self_training" / f"added-{r['round']}.jsonl").read_text().splitlines()]
        assert len(added) == r["added"] == sum(r["added_per_class"].values()) > 0
        assert len(set(r["added_per_class"].values())) == 1  # balanced
        assert all(r["above_threshold"][k] >= n for k, n in r["added_per_class"].items())
        assert r["train_rows"] == 8 + sum(x["added"] for x in record["rounds"][:r["round"] + 1])
        assert {a["label"] for a in added} <= {"a", "b"} and all(a["path"] == str(files["pool"]) for a in added)
    chosen = record["rounds"][record["chosen_round"]]["macro_f1"]
    assert chosen == max(r["macro_f1"] for r in record["rounds"])
    assert metrics["validation"]["macro_f1"] == pytest.approx(chosen, abs=1e-6)  # the run is the chosen round's model
    assert "## Self-training" in run.card.read_text() and any(line.startswith("self-training stopped") for line in lines)
    assert not any((run.path / "self_training").glob("round-*/model.safetensors"))  # only the run's model is kept
    assert len(open_run(run.path).predict(["cat piano the a"])) == 1 and metrics["test"]["accuracy"] >= 0.5


@pytest.mark.slow
def test_ner_self_training_adds_sentences_whose_every_entity_is_confident(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "train.jsonl", SENTENCES[:4], repeat=4)
    write_jsonl(tmp_path / "val.jsonl", SENTENCES[:4])
    pool = ["Angela Merkel visited Paris.", "John Carter visited Munich.", "We met in Munich yesterday.", "Nothing here."]
    (tmp_path / "pool.txt").write_text("\n".join(pool) + "\n")
    cfg = run_config(tmp_path, tiny_model_dir, tmp_path / "train.jsonl", task={"type": "ner"},
                     data={"validation": str(tmp_path / "val.jsonl"), "test": str(tmp_path / "val.jsonl")},
                     train={"epochs": 40, "learning_rate": 5e-3, "self_training": {
                         "unlabelled": str(tmp_path / "pool.txt"), "rounds": 1, "precision": 0.5, "min_confidence": 0.2}},
                     eval={"plots": False, "robustness_rows": 0})
    run = train(cfg, log=lambda m: None)
    record = json.loads((run.path / "self_training.json").read_text())["rounds"][1]
    added = [json.loads(line) for line in (run.path / "self_training" / "added-1.jsonl").read_text().splitlines()]
    assert 0 < len(added) == record["added"] and set(record["added_per_class"]) <= {"PER", "LOC", "ORG"}
    for row in added:
        assert row["text"] in pool and row["label"]
        assert all(row["text"][s:e].strip() == row["text"][s:e] != "" for s, e, _ in row["label"])
        assert min(record["thresholds"].values()) >= 0.2


def test_the_consistency_term_adds_the_divergence_from_an_augmented_copy(bundled_model_dir):
    torch.manual_seed(0)  # the bundled encoder: a random tiny one answers nearly the same whatever the words
    tok = AutoTokenizer.from_pretrained(bundled_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(bundled_model_dir, num_labels=2).eval()
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    batch = tok(["the cat sat on the blue piano today", "a dog ran up the red mountain then"], padding=True,
                return_tensors="pt")
    batch["labels"] = torch.tensor([0, 1])
    settings = SelfTrainingConfig(unlabelled="x", consistency=2.0, consistency_ops=["swap"], consistency_rate=0.5)
    term = Consistency(settings, tok, 32, softmax_divergence, seed=0)
    inner = lambda m, inputs, n: (m(**inputs).loss, m(**inputs))  # noqa: E731
    task_loss, _ = inner(model, batch, None)
    loss, _ = term.training_loss(None, model, batch, None, inner)
    assert loss - task_loss > 1e-4
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert term.copies(batch["input_ids"]) != tok.batch_decode(batch["input_ids"], skip_special_tokens=True)


def test_what_self_training_cannot_do_is_refused_before_any_work(tmp_path, tiny_model_dir, files):
    regression = run_config(tmp_path, tiny_model_dir, files["train"], task={"type": "regression"},
                            train={"self_training": {"unlabelled": str(files["pool"])}})
    with pytest.raises(UnsupportedError, match=r"train.self_training\S*: regression runs do not support"):
        train(regression, log=lambda m: None)
    no_validation = run_config(tmp_path, tiny_model_dir, files["train"], data={"split": {"validation": 0.0}},
                               train={"self_training": {"unlabelled": str(files["pool"])}})
    with pytest.raises(ConfigError, match="set on validation"):
        train(no_validation, log=lambda m: None)
    ner = run_config(tmp_path, tiny_model_dir, write_jsonl(tmp_path / "ner.jsonl", SENTENCES, repeat=2),
                     task={"type": "ner"}, train={"self_training": {"unlabelled": str(files["pool"]), "consistency": 1}})
    with pytest.raises(ConfigError, match="NER self-trains without the consistency term"):
        train(ner, log=lambda m: None)
    overlap = config(tmp_path, tiny_model_dir, {**files, "pool": files["validation"]})
    with pytest.raises(GraftkitError, match="has no row left to label"):
        train(overlap, log=lambda m: None)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_a_killed_self_training_run_resumes_to_the_same_result(tmp_path, tiny_model_dir, files):
    def config_file(name):
        tree = {"name": name, "output_dir": str(tmp_path / "runs"), "model": {"name_or_path": tiny_model_dir},
                "data": {"train": str(files["train"]), "validation": str(files["validation"]),
                         "test": str(files["test"]), "max_length": 32},
                "train": {"epochs": 12, "batch_size": 8, "learning_rate": 5e-3, "report_to": [], "early_stopping": None,
                          "self_training": {"unlabelled": str(files["pool"]), "rounds": 1}},
                "eval": {"plots": False, "robustness_rows": 0}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tree))
        return path

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "graftkit", "train"]
    whole = subprocess.Popen(cli + [str(config_file("whole"))], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # alongside: the two runs share nothing
    proc = subprocess.Popen(cli + [str(config_file("killed"))], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    round_one = tmp_path / "runs" / ".killed.partial" / "self_training" / ".round-1.partial" / "checkpoints"
    deadline = time.time() + 300
    while not any(round_one.glob("checkpoint-*")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before round 1 saved a checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cli + [str(config_file("killed")), "--resume"], env=env, cwd=REPO, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert whole.wait() == 0, whole.stderr.read()[-2000:]
    assert "round 0: finished before" in resumed.stdout + resumed.stderr
    a, b = (json.loads((tmp_path / "runs" / n / "self_training.json").read_text()) for n in ("whole", "killed"))
    assert [r["added_per_class"] for r in a["rounds"][1:]] == [r["added_per_class"] for r in b["rounds"][1:]]
    whole_rows, killed_rows = (tmp_path / "runs" / name / "self_training" / "added-1.jsonl" for name in ("whole", "killed"))
    assert whole_rows.read_text() == killed_rows.read_text() != ""
    assert [r["macro_f1"] for r in a["rounds"]] == pytest.approx([r["macro_f1"] for r in b["rounds"]], abs=1e-6)
