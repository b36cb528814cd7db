"""Readers on good and bad input, label validation, and split properties."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import write_csv
from graftkit.config import DataConfig
from graftkit.data import load_splits, read_rows
from graftkit.data.splits import split_items
from graftkit.errors import DataError
from graftkit.tasks import build_task
from graftkit.tasks.classification.config import ClassificationConfig


def _task(**data):
    dc = DataConfig(train="x.csv", **data)
    return build_task(ClassificationConfig(), dc), dc


def test_csv_quoted_newlines_and_line_numbers(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('text,label\n"multi\nline",pos\nplain,neg\n', encoding="utf-8")
    rows = read_rows(p)
    assert [r.values["text"] for r in rows] == ["multi\nline", "plain"]
    assert [r.line for r in rows] == [2, 4]


def test_ragged_csv_names_line(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("text,label\nok,pos\ntoo,many,fields\n")
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert str(e.value).startswith(f"{p}, line 3: has 3 fields but the header has 2")


def test_wrong_encoding_names_line_and_fix(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes("text,label\nfine,pos\ncaf\xe9 au lait,neg\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert f"{p}, line 3" in str(e.value) and "data.encoding" in str(e.value)
    rows = read_rows(p, encoding="latin-1")
    assert rows[1].values["text"] == "café au lait"


def test_tsv_jsonl_parquet_hf_disk(tmp_path):
    import datasets

    (tmp_path / "a.tsv").write_text("text\tlabel\nhello, world\tpos\n")
    assert read_rows(tmp_path / "a.tsv")[0].values == {"text": "hello, world", "label": "pos"}
    (tmp_path / "a.jsonl").write_text('{"text": "x", "label": "a"}\n\n{"text": "y", "label": "b"}\n')
    rows = read_rows(tmp_path / "a.jsonl")
    assert [r.line for r in rows] == [1, 3]
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "label": "a"}\n{"text": \n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_rows(tmp_path / "bad.jsonl")
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    ds.to_parquet(str(tmp_path / "a.parquet"))
    assert [r.values["label"] for r in read_rows(tmp_path / "a.parquet")] == [0, 1]
    ds.save_to_disk(str(tmp_path / "hf"))
    assert [r.values["text"] for r in read_rows(tmp_path / "hf")] == ["a", "b"]
    with pytest.raises(DataError, match="cannot tell the format"):
        read_rows(tmp_path / "a.xlsx")


def test_missing_column_empty_text_unseen_label(tmp_path):
    task, dc = _task(text_column="sentence")
    write_csv(tmp_path / "a.csv", [["x", "pos"]])
    with pytest.raises(DataError) as e:
        load_splits(dc.model_copy(update={"train": str(tmp_path / "a.csv")}), task.parse_label)
    assert "line 2" in str(e.value) and "missing column 'sentence'" in str(e.value)

    task, dc = _task()
    train = write_csv(tmp_path / "t.csv", [["good", "pos"], ["   ", "neg"], ["bad", "neg"]])
    with pytest.raises(DataError) as e:
        load_splits(dc.model_copy(update={"train": str(train)}), task.parse_label)
    assert str(e.value) == f"{train}, line 3, field 'text': empty text"

    train = write_csv(tmp_path / "t2.csv", [["good", "pos"], ["bad", "neg"]] * 5)
    val = write_csv(tmp_path / "v.csv", [["fine", "pos"], ["meh", "mixed"]])
    dc2 = dc.model_copy(update={"train": str(train), "validation": str(val), "test": str(val)})
    task, _ = _task()
    splits = load_splits(dc2, task.parse_label)
    task.fit(splits.train)
    with pytest.raises(DataError) as e:
        task.check(splits.validation)
    assert f"{val}, line 3, field 'label': label 'mixed' does not occur" in str(e.value)


def test_drop_invalid_counts_rows(tmp_path):
    train = write_csv(tmp_path / "t.csv", [["good", "pos"], ["", "neg"], ["bad", ""], ["ok", "neg"]] * 5)
    task, dc = _task(drop_invalid=True)
    splits = load_splits(dc.model_copy(update={"train": str(train)}), task.parse_label)
    assert splits.dropped == {"train": 10}
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 10


def test_stratified_split_properties():
    items = list(range(1000))
    keys = ["a"] * 700 + ["b"] * 250 + ["c"] * 50
    tr, va, te = split_items(items, keys, 0.1, 0.2, seed=7)
    assert sorted(tr + va + te) == items and not set(tr) & set(va) and not set(va) & set(te)
    assert (len(tr), len(va), len(te)) == (700, 100, 200)
    for part, n in ((va, 100), (te, 200)):
        c = Counter(keys[i] for i in part)
        assert c == {"a": round(0.7 * n), "b": round(0.25 * n), "c": round(0.05 * n)}
    assert split_items(items, keys, 0.1, 0.2, seed=7) == (tr, va, te)  # seeded
    assert split_items(items, keys, 0.1, 0.2, seed=8)[2] != te


def test_split_is_written_into_notes(tmp_path):
    train = write_csv(tmp_path / "t.csv", [[f"text {i}", "pos" if i % 2 else "neg"] for i in range(40)])
    task, dc = _task()
    splits = load_splits(dc.model_copy(update={"train": str(train)}), task.parse_label, task.strat_key)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (32, 4, 4)
    assert Counter(e.label for e in splits.test) == {"pos": 2, "neg": 2}
    assert "seed 42" in splits.notes[0]
    json.dumps(splits.notes)


def test_hub_dataset_goes_through_datasets_load_dataset(monkeypatch):
    """Users online name a hub dataset; here load_dataset is replaced by a local Dataset."""
    import datasets

    calls = []

    def fake_load(path, name=None, split=None):
        calls.append((path, name, split))
        n = 20 if split == "train" else 4
        return datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(n)], "label": [i % 2 for i in range(n)]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    dc = DataConfig(hub={"path": "glue", "name": "sst2", "validation_split": "validation"}, text_column="sentence")
    task = build_task(ClassificationConfig(), dc)
    splits = load_splits(dc, task.parse_label, task.strat_key)
    assert calls == [("glue", "sst2", "train"), ("glue", "sst2", "validation")]
    assert len(splits.validation) == 4 and len(splits.train) + len(splits.test) == 20
    assert splits.train[0].path == "hub:glue/train"
