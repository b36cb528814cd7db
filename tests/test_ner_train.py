"""NER end to end on a tiny model: overfit, save, reload, spans at gold character offsets; CLI with a CRF head."""
from __future__ import annotations

import json

import pytest
import yaml
from transformers import AutoModelForTokenClassification
from typer.testing import CliRunner

from conftest import run_config
from graftkit.cli import app
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train

SENTENCES = [
    ("Angela Merkel visited Munich.", [(0, 13, "PER"), (22, 28, "LOC")]),
    ("Siemens opened an office in Paris.", [(0, 7, "ORG"), (28, 33, "LOC")]),
    ("John Carter works for Siemens.", [(0, 11, "PER"), (22, 29, "ORG")]),
    ("We met in Paris yesterday.", [(10, 15, "LOC")]),
    ("浙商银行在北京开会。", [(0, 4, "ORG"), (5, 7, "LOC")]),
    ("李开复说北京很好。", [(0, 3, "PER"), (4, 6, "LOC")]),
]


def write_jsonl(path, rows, repeat=1):
    lines = [json.dumps({"text": t, "entities": [{"start": s, "end": e, "label": y} for s, e, y in ents]},
                        ensure_ascii=False) for t, ents in rows] * repeat
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def gold_of(text):
    return next([list(x) for x in ents] for t, ents in SENTENCES if t == text)


def test_overfit_save_reload_spans(tmp_path, tiny_model_dir):
    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=4)
    test_file = write_jsonl(tmp_path / "test.jsonl", SENTENCES)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     data={"validation": str(test_file), "test": str(test_file)},
                     train={"epochs": 40, "learning_rate": 5e-3})
    run = train(cfg, log=lambda m: None)
    metrics = json.loads(run.metrics.read_text())
    assert metrics["test"]["f1"] == 1.0 and metrics["test"]["token_accuracy"] == 1.0
    assert set(metrics["test"]["per_class"]) == {"LOC", "ORG", "PER"}
    state = json.loads(run.labels.read_text())
    assert state["scheme"] == "IOB2" and state["labels"][0] == "O" and state["crf"] is False
    assert state["source_schemes"] == {str(train_file): "spans", str(test_file): "spans"}
    assert (run.predictions / "test" / "sentences_with_errors.jsonl").read_text() == ""

    pred = Predictor(run.path)
    texts = [t for t, _ in SENTENCES]
    batch = pred.predict(texts, batch_size=4)
    single = [pred.predict([t])[0] for t in texts]
    for text, b, s in zip(texts, batch, single):
        assert [[e.start, e.end, e.label] for e in b.entities] == gold_of(text)
        assert all(e.text == text[e.start:e.end] and 0 < e.score <= 1 for e in b.entities)
        assert [(e.start, e.end, e.label) for e in b.entities] == [(e.start, e.end, e.label) for e in s.entities]
        for x, y in zip(b.entities, s.entities):
            assert x.score == pytest.approx(y.score, abs=1e-5)
    # a plain transformers folder with the tag names
    model = AutoModelForTokenClassification.from_pretrained(run.path)
    assert model.config.id2label[0] == "O" and "B-PER" in model.config.label2id


CONLL_ROWS = [
    [("Angela", "B-PER"), ("Merkel", "I-PER"), ("visited", "O"), ("Munich", "B-LOC"), (".", "O")],
    [("Siemens", "B-ORG"), ("opened", "O"), ("in", "O"), ("Paris", "B-LOC"), (".", "O")],
    [("John", "B-PER"), ("Carter", "I-PER"), ("joined", "O"), ("Siemens", "B-ORG"), (".", "O")],
    # longer than one window at max_length 12: trained and predicted in overlapping windows
    [("Yesterday", "O"), ("John", "B-PER"), ("Carter", "I-PER"), ("and", "O"), ("Angela", "B-PER"),
     ("Merkel", "I-PER"), ("met", "O"), ("in", "O"), ("Paris", "B-LOC"), ("with", "O"), ("Siemens", "B-ORG"),
     ("staff", "O"), ("near", "O"), ("Munich", "B-LOC"), (".", "O")],
]


def test_cli_train_evaluate_predict_crf(tmp_path, tiny_model_dir):
    conll = "-DOCSTART- -X- O\n\n" + "\n\n".join("\n".join(f"{w} X {t}" for w, t in s) for s in CONLL_ROWS * 3) + "\n"
    data = tmp_path / "train.conll"
    data.write_text(conll, encoding="utf-8")
    tree = {"name": "ner", "output_dir": str(tmp_path / "runs"),
            "data": {"train": str(data), "validation": str(data), "test": str(data), "max_length": 12},
            "model": {"name_or_path": tiny_model_dir},
            "task": {"type": "ner", "crf": True, "tag_scheme": "BIOES", "window_overlap": 4},
            "train": {"epochs": 40, "batch_size": 8, "learning_rate": 5e-3, "report_to": [], "early_stopping": None},
            "eval": {"plots": True}}
    cfg_file = tmp_path / "ner.yaml"
    cfg_file.write_text(yaml.safe_dump(tree))
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg_file)])
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "ner"
    state = json.loads((run / "labels.json").read_text())
    assert state["crf"] is True and state["scheme"] == "BIOES" and "S-LOC" in state["labels"]
    assert state["source_schemes"][str(data)] == "IOB2"
    assert (run / "plots" / "confusion_matrix.png").is_file()

    res = runner.invoke(app, ["evaluate", str(run), "--data", str(data), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "f1" in res.output and "PER" in res.output
    report = json.loads((run / "metrics.json").read_text())["evaluations"][str(data)]
    assert report["f1"] == 1.0

    long_text = " ".join(w for w, _ in CONLL_ROWS[3])
    res = runner.invoke(app, ["predict", str(run), long_text])
    assert res.exit_code == 0, res.output
    ents = json.loads(res.stdout.strip().splitlines()[-1])["entities"]
    assert [(e["text"], e["label"]) for e in ents] == [("John Carter", "PER"), ("Angela Merkel", "PER"),
                                                       ("Paris", "LOC"), ("Siemens", "ORG"), ("Munich", "LOC")]
    assert all(long_text[e["start"]:e["end"]] == e["text"] for e in ents)

    inputs = tmp_path / "in.txt"
    inputs.write_text("Angela Merkel visited Munich .\nSiemens opened in Paris .\n", encoding="utf-8")
    res = runner.invoke(app, ["predict", str(run), "--input", str(inputs), "--output", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [[e["text"] for e in x["entities"]] for x in lines] == [["Angela Merkel", "Munich"], ["Siemens", "Paris"]]

    bad = tmp_path / "bad.conll"
    bad.write_text("Paris B-LOC\nis O X\n", encoding="utf-8")
    res = runner.invoke(app, ["evaluate", str(run), "--data", str(bad)])
    assert res.exit_code == 2 and "bad.conll, line 2: token 'is': 3 columns" in res.output


def test_type_only_in_validation_and_test_trains_and_counts_as_missed(tmp_path, tiny_model_dir):
    """An entity type absent from training does not crash building the validation features (it once did)."""
    train_rows = [(t, [e for e in ents if e[2] != "ORG"]) for t, ents in SENTENCES]
    train_file = write_jsonl(tmp_path / "train.jsonl", train_rows, repeat=4)
    held_out = write_jsonl(tmp_path / "held.jsonl", SENTENCES)  # ORG appears only here
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     data={"validation": str(held_out), "test": str(held_out)},
                     train={"max_steps": 3, "learning_rate": 5e-3})
    run = train(cfg, log=lambda m: None)
    state = json.loads(run.labels.read_text())
    assert state["types"] == ["LOC", "PER"]  # the label set is the training split's
    test = json.loads(run.metrics.read_text())["test"]
    assert test["per_class"]["ORG"]["recall"] == 0.0 and test["per_class"]["ORG"]["support"] == 3
    assert run.is_complete
