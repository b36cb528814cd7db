"""Readers accept what real files hold, and their errors name the file."""
from __future__ import annotations

import csv

import pytest

from graftkit.data import read_rows
from graftkit.errors import DataError


def test_multi_megabyte_csv_cell_is_a_document(tmp_path):
    big = "word " * 600_000  # 3 MB in one cell; the csv module's default limit is 128 KiB
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["text", "label"], [big, "pos"], ["short", "neg"]])
    before = csv.field_size_limit()
    rows = read_rows(path)
    assert [len(r.values["text"]) for r in rows] == [len(big), 5]
    # raised once and never put back: lowering it would break another thread's read of a large cell
    assert csv.field_size_limit() >= max(before, 2**31 - 1)


@pytest.mark.parametrize("name, content", [("empty.csv", "text,label\n"), ("empty.jsonl", "\n\n"),
                                           ("empty.tsv", "text\tlabel\n")])
def test_no_usable_rows_names_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="no usable rows") as err:
        read_rows(path)
    assert name in str(err.value)


def test_a_class_lost_to_the_split_is_named(tmp_path):
    from graftkit.config import DataConfig
    from graftkit.data import load_splits

    path = tmp_path / "few.csv"
    path.write_text("text,label\n" + "".join(f"good {i},pos\n" for i in range(3)) + "bad one,neg\n", encoding="utf-8")
    raised = 0
    for seed in range(20):  # the lone 'neg' row lands in validation/test for some seeds
        cfg = DataConfig(train=str(path), split={"validation": 0.25, "test": 0.25, "seed": seed})
        try:
            splits = load_splits(cfg)
        except DataError as err:
            raised += 1
            assert "few.csv" in str(err) and "holds only class 'pos'" in str(err) and "'neg' (1 row)" in str(err)
        else:
            assert {e.label for e in splits.train} == {"pos", "neg"}
    assert raised > 0
