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
    assert csv.field_size_limit() == before  # the process-wide limit is put back


@pytest.mark.parametrize("name, content", [("empty.csv", "text,label\n"), ("empty.jsonl", "\n\n"),
                                           ("empty.tsv", "text\tlabel\n")])
def test_no_usable_rows_names_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="no usable rows") as err:
        read_rows(path)
    assert name in str(err.value)
