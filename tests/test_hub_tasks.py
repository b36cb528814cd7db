"""`data.hub` feeds NER and embedding runs too (``datasets.load_dataset`` is replaced by local datasets: no
network): NER reads hub token/tag lists, with class ids turned into tag names, and embedding reads hub pairs."""
from __future__ import annotations

import datasets
import pytest
from conftest import run_config

from graftkit.io import read_json
from graftkit.train.trainer import prepare, train

NER_FEATURES = datasets.Features({
    "tokens": datasets.Sequence(datasets.Value("string")),
    "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))})
SENTENCES = [(["John", "Smith", "lives", "in", "Paris"], [1, 2, 0, 0, 3]),
             (["Mary", "visited", "New", "York"], [1, 0, 3, 4])]


@pytest.fixture
def fake_hub(monkeypatch):
    """``load_dataset(path, name, split=...)`` answering from the tables given per split; records the calls."""
    calls, tables = [], {}

    def load(path, name=None, split=None):
        calls.append((path, name, split))
        return tables[split]

    monkeypatch.setattr(datasets, "load_dataset", load)
    return calls, tables


def _ner_split(n: int) -> datasets.Dataset:
    rows = [SENTENCES[i % 2] for i in range(n)]
    return datasets.Dataset.from_dict({"tokens": [t for t, _ in rows], "ner_tags": [g for _, g in rows]},
                                      features=NER_FEATURES)


def test_ner_trains_from_hub_token_tags(tmp_path, tiny_model_dir, fake_hub):
    calls, tables = fake_hub
    tables.update(train=_ner_split(12), validation=_ner_split(4), test=_ner_split(4))
    hub = {"path": "conll2003", "validation_split": "validation", "test_split": "test"}
    cfg = run_config(tmp_path, tiny_model_dir, "unused", data={"train": None, "hub": hub},
                     task={"type": "ner"}, train={"max_steps": 2})
    task, splits = prepare(cfg)
    first = splits.train[0]
    assert [(first.text[s:t], typ) for s, t, typ in first.label] == [("John Smith", "PER"), ("Paris", "LOC")]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (12, 4, 4)
    assert task.types == ["LOC", "PER"] and task.source_schemes["hub:conll2003/train"] == "IOB2"
    run = train(cfg, log=lambda m: None)
    assert run.is_complete and read_json(run.labels)["types"] == ["LOC", "PER"]
    assert ("conll2003", None, "test") in calls


def test_embedding_trains_from_hub_pairs(tmp_path, tiny_model_dir, fake_hub):
    calls, tables = fake_hub
    tables["train"] = datasets.Dataset.from_dict({"question": [f"how do I reset pin {i}" for i in range(20)],
                                                  "answer": [f"reset pin {i} in the app" for i in range(20)]})
    cfg = run_config(tmp_path, tiny_model_dir, "unused", task={"type": "embedding"}, train={"max_steps": 2},
                     data={"train": None, "hub": {"path": "faq"}, "text_column": "question",
                           "text_pair_column": "answer"})
    run = train(cfg, log=lambda m: None)
    assert run.is_complete and calls == [("faq", None, "train")]
    assert read_json(run.labels)["mode"] == "pairs"
    assert read_json(run.metrics)["data"]["train_pairs"] == 20 - 2 - 2  # 10% validation and 10% test carved out
