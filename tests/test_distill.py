"""Knowledge distillation (graftkit/train/distill.py) on tiny models: KD loss, teacher checks, the report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from conftest import run_config, write_csv
from graftkit.errors import ConfigError, DataError
from graftkit.inference.predictor import Predictor
from graftkit.io import read_json
from graftkit.train.distill import kd_divergence
from graftkit.train.trainer import train

ROWS = [["good film", "pos"], ["great movie", "pos"], ["lovely acting", "pos"], ["bad film", "neg"],
        ["awful movie", "neg"], ["boring acting", "neg"], ["fine plot", "pos"], ["dull plot", "neg"]]


def test_kd_divergence_is_zero_for_equal_logits_and_scales_with_t_squared():
    a = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    assert kd_divergence(a, a, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    b = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    kl = torch.nn.functional.kl_div(torch.log_softmax(a, -1), torch.softmax(b, -1), reduction="batchmean")
    assert kd_divergence(a, b, 1.0).item() == pytest.approx(kl.item(), rel=1e-5)
    assert kd_divergence(a * 3, b * 3, 3.0).item() == pytest.approx(9 * kl.item(), rel=1e-4)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("teacher")
    cfg = run_config(tmp, tiny_model_dir, write_csv(tmp / "train.csv", ROWS * 4), name="teacher",
                     data={"train": str(tmp / "train.csv"), "test": str(write_csv(tmp / "test.csv", ROWS)),
                           "split": {"validation": 0.2, "test": 0.0}},
                     train={"max_steps": 15, "learning_rate": 3e-3})
    return train(cfg, log=lambda m: None).path


def _student(tmp_path, tiny_model_dir, teacher, alpha=0.0, name="student", **distill):
    return run_config(tmp_path, tiny_model_dir, write_csv(tmp_path / "train.csv", ROWS * 4), name=name,
                      data={"train": str(tmp_path / "train.csv"),
                            "test": str(write_csv(tmp_path / "test.csv", ROWS)),
                            "split": {"validation": 0.2, "test": 0.0}},
                      model={"name_or_path": tiny_model_dir, "keep_layers": [1]},
                      train={"max_steps": 120, "learning_rate": 3e-3, "warmup": 0, "seed": 7,
                             "distill": {"teacher": str(teacher), "alpha": alpha, "temperature": 1.0, **distill}})


def test_alpha_zero_student_matches_the_teacher(tmp_path, tiny_model_dir, teacher):
    run = train(_student(tmp_path, tiny_model_dir, teacher), log=lambda m: None)
    texts = [r[0] for r in ROWS]
    t = Predictor(teacher).predict(texts)
    s = Predictor(run.path).predict(texts)
    tp = np.array([[p.scores[k] for k in ("neg", "pos")] for p in t])
    sp = np.array([[p.scores[k] for k in ("neg", "pos")] for p in s])
    assert np.abs(tp - sp).max() < 0.05  # the student copies the teacher's soft labels, not the gold ones
    report = read_json(run.metrics)["distillation"]
    assert report["size_ratio"] < 1 and report["teacher_parameters"] > report["student_parameters"]
    assert report["retention"] == pytest.approx(report["student_metric"] / report["teacher_metric"])
    card = (run.path / "README.md").read_text(encoding="utf-8")
    assert "## Distillation" in card and "retention" in card
    # no pickled teacher logits: the run folder holds safetensors and JSON (Trainer checkpoints aside)
    kept = [p for p in run.path.rglob("*") if p.is_file() and "checkpoints" not in p.parts]
    assert not [p for p in kept if p.suffix in (".pkl", ".pickle", ".bin", ".pt", ".npy")]


def test_unlabelled_text_joins_training_with_soft_labels(tmp_path, tiny_model_dir, teacher):
    extra = tmp_path / "extra.txt"
    extra.write_text("nice movie\nterrible plot\nsplendid acting\n", encoding="utf-8")
    logs: list[str] = []
    cfg = _student(tmp_path, tiny_model_dir, teacher, alpha=0.5, unlabelled=str(extra))
    cfg.train.max_steps = 4
    train(cfg, log=logs.append)
    assert any("3 unlabelled texts" in m for m in logs)


def test_empty_unlabelled_file_is_an_error(tmp_path, tiny_model_dir, teacher):
    extra = tmp_path / "extra.txt"
    extra.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="extra.txt.*holds no text"):
        train(_student(tmp_path, tiny_model_dir, teacher, unlabelled=str(extra)), log=lambda m: None)


def test_teacher_with_other_labels_is_an_error(tmp_path, tiny_model_dir, teacher):
    cfg = _student(tmp_path, tiny_model_dir, teacher)
    write_csv(tmp_path / "train.csv", [[t, "yes" if y == "pos" else "no"] for t, y in ROWS] * 4)
    write_csv(tmp_path / "test.csv", [[t, "yes" if y == "pos" else "no"] for t, y in ROWS])
    with pytest.raises(ConfigError, match="labels"):
        train(cfg, log=lambda m: None)


def test_teacher_of_another_task_is_an_error(tmp_path, tiny_model_dir, teacher):
    path = tmp_path / "ner.jsonl"
    path.write_text("\n".join(json.dumps({"text": "Paris is big", "entities": [{"start": 0, "end": 5,
                                                                                 "label": "LOC"}]})
                              for _ in range(10)) + "\n", encoding="utf-8")
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "ner"},
                     train={"max_steps": 1, "distill": {"teacher": str(teacher)}})
    with pytest.raises(ConfigError, match="classification run, the student is ner"):
        train(cfg, log=lambda m: None)


def test_teacher_with_another_tokenizer_is_an_error(tmp_path, tiny_model_dir, teacher):
    cfg = _student(tmp_path, tiny_model_dir, teacher)
    write_csv(tmp_path / "train.csv", [[t + " 彭军", y] for t, y in ROWS] * 4)
    cfg.model.extend_vocab = "auto"  # the student's tokenizer gains 彭 and 军, the teacher's has neither
    with pytest.raises(ConfigError, match="tokenizer differs"):
        train(cfg, log=lambda m: None)


def test_ner_student_matches_the_teacher_at_labelled_positions(tmp_path, tiny_model_dir):
    rows = [("Paris is big", [(0, 5, "LOC")]), ("John likes Rome", [(0, 4, "PER"), (11, 15, "LOC")])] * 8
    path = tmp_path / "ner.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "entities": [{"start": s, "end": e, "label": y}
                                                                  for s, e, y in ents]}) for t, ents in rows) + "\n",
                    encoding="utf-8")
    base = dict(task={"type": "ner"}, data={"train": str(path), "split": {"validation": 0.2, "test": 0.2}})
    teacher = train(run_config(tmp_path, tiny_model_dir, path, name="nt",
                               train={"max_steps": 30, "learning_rate": 3e-3}, **base), log=lambda m: None).path
    cfg = run_config(tmp_path, tiny_model_dir, path, name="ns", **base, model={"name_or_path": tiny_model_dir,
                                                                              "keep_layers": [0]},
                     train={"max_steps": 100, "learning_rate": 3e-3, "warmup": 0,
                            "distill": {"teacher": str(teacher), "alpha": 0.0, "temperature": 1.0}})
    student = train(cfg, log=lambda m: None).path
    tok = AutoTokenizer.from_pretrained(student)
    enc = tok([["Paris", "is", "big"], ["John", "likes", "Rome"]], is_split_into_words=True, padding=True,
              return_tensors="pt")
    first = torch.tensor([[w is not None and (i == 0 or enc.word_ids(b)[i - 1] != w)
                           for i, w in enumerate(enc.word_ids(b))] for b in range(2)])
    with torch.no_grad():
        probs = [AutoModelForTokenClassification.from_pretrained(d).eval()(**enc).logits.softmax(-1)[first]
                 for d in (teacher, student)]
    assert (probs[0] - probs[1]).abs().max() < 0.1  # token-level KD over the labelled (first-piece) positions
    assert read_json(student / "metrics.json")["distillation"]["size_ratio"] < 1


def test_report_is_written_before_complete_and_the_teacher_runs_on_every_step(tmp_path, tiny_model_dir, teacher,
                                                                              monkeypatch):
    """The distillation section is written before COMPLETE (it once came after); teacher logits are never cached."""
    from graftkit.modeling.run_folder import RunFolder
    from graftkit.train.distill import Distiller

    at_complete, calls = {}, []
    mark_complete, teacher_logits = RunFolder.mark_complete, Distiller.teacher_logits

    def snapshot(run):
        at_complete["card"] = run.card.read_text(encoding="utf-8")
        at_complete["metrics"] = read_json(run.metrics)
        mark_complete(run)

    def counted(self, inputs):
        calls.append(inputs["input_ids"].shape[0])
        return teacher_logits(self, inputs)

    monkeypatch.setattr(RunFolder, "mark_complete", snapshot)
    monkeypatch.setattr(Distiller, "teacher_logits", counted)
    cfg = _student(tmp_path, tiny_model_dir, teacher, alpha=0.5)
    cfg.data.test = None  # no test split: retention is measured on validation, and the card says so
    cfg.train.max_steps = 4
    run = train(cfg, log=lambda m: None)
    assert "## Distillation" in at_complete["card"] and "validation examples" in at_complete["card"]
    assert at_complete["metrics"]["distillation"]["split"] == "validation"
    assert run.card.read_text(encoding="utf-8") == at_complete["card"]  # nothing changed after COMPLETE
    assert len(calls) == 4  # fresh teacher logits on each training step (none during evaluation)


def _task(kind="classification", labels=("neg", "pos"), **settings):
    """A task as a run folder holds it: built from its `task:` section (``settings``), its labels fitted
    (regression has target columns instead)."""
    from graftkit.tasks import TASKS, build_task

    task = build_task(TASKS.config_class(kind)(**settings))
    if kind == "regression":
        task.columns = list(labels)
    else:
        task.labels = list(labels)
    return task


@pytest.mark.parametrize("t_task, s_task, match", [
    (_task(multi_label=True), _task(), "multi-label classification run, the student is single-label"),
    (_task("ner", ["O", "B-X", "I-X"], label_all_pieces=True),
     _task("ner", ["O", "B-X", "I-X"], label_all_pieces=False), "label_all_pieces=True, the student False"),
    (_task(labels=("pos", "neg")), _task(), r"labels \['pos', 'neg'\].*same label set"),
    (_task("regression", ["score"]), _task(), "regression run, the student is classification"),
])
def test_teacher_mismatches_are_named(t_task, s_task, match, tiny_model_dir):
    from types import SimpleNamespace

    from graftkit.train.distill import check_compatible

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(ConfigError, match=match):
        check_compatible(SimpleNamespace(task=t_task, tokenizer=tok), s_task, tok, "runs/t")
    check_compatible(SimpleNamespace(task=s_task, tokenizer=tok), s_task, tok, "runs/t")  # itself: fine


def test_teacher_with_another_normaliser_is_an_error(tiny_model_dir):
    """Same vocabulary, but a cased teacher: 'Hello' becomes [UNK] there and 'hello' here."""
    from types import SimpleNamespace

    from graftkit.train.distill import check_compatible

    student = AutoTokenizer.from_pretrained(tiny_model_dir)
    cased = AutoTokenizer.from_pretrained(tiny_model_dir, do_lower_case=False)
    assert cased.get_vocab() == student.get_vocab()
    with pytest.raises(ConfigError, match="normalises text differently"):
        check_compatible(SimpleNamespace(task=_task(), tokenizer=cased), _task(), student, "runs/t")


def test_teacher_shorter_than_the_students_rows_is_an_error():
    from types import SimpleNamespace

    from graftkit.train.distill import check_positions

    teacher = SimpleNamespace(backend=SimpleNamespace(model=SimpleNamespace(
        config=SimpleNamespace(max_position_embeddings=128))))
    check_positions(teacher, 128, "runs/t")
    with pytest.raises(ConfigError, match="at most 128 positions.*max_length is 256"):
        check_positions(teacher, 256, "runs/t")


@pytest.mark.parametrize("width, ok", [(5, True), (10, False)])
def test_teacher_must_give_one_score_per_label(tiny_model_dir, width, ok):
    """A span-voting NER ensemble returns its members' scores side by side: 2 members × 5 labels."""
    from types import SimpleNamespace

    from graftkit.train.distill import Distiller

    def model(input_ids, attention_mask):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, width))

    fake = SimpleNamespace(backend=SimpleNamespace(model=model, accepts={"input_ids", "attention_mask"}))
    distiller = Distiller(fake, alpha=0.5, temperature=2.0, token_level=True)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if ok:
        distiller.check_width(tok, 5, "runs/t")
    else:
        with pytest.raises(ConfigError, match="gives 10 scores per position, the student has 5 labels"):
            distiller.check_width(tok, 5, "runs/t")
