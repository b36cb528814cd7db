"""Readers for tabular labelled data: CSV, TSV, JSON Lines, Parquet and `datasets` folders, and the
registry of every ``data.format``.

Every reader returns a list of ``Row``: the record as a dict plus the place it came from
(file and 1-based line, or row index for binary formats), so later validation can say
exactly where a bad value is. ``READERS`` is the one list of data formats: the row formats below,
and the formats a task reads itself, registered from the task's folder with the task type they
belong to (NER's CoNLL and span files, ranking's MIND folders). ``data.format`` is checked against it.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from graftkit.errors import ConfigError, DataError
from graftkit.io import allow_large_csv_fields
from graftkit.registry import Registry

log = logging.getLogger("graftkit.data")


@dataclass
class Row:
    """One record and where it came from (``line`` is a file line, or a row number for binary formats)."""

    values: dict[str, Any]
    path: str
    line: int


@dataclass(frozen=True)
class DataFormat:
    """A registered ``data.format``: its row reader (None: the task it belongs to reads such files itself)
    and that task type (None: a format for every task)."""

    read_rows: Callable[..., list[Row]] | None = None
    task: str | None = None


class FormatRegistry(Registry):
    """Format name → ``DataFormat``; ``check`` validates a config's ``data.format`` for its task."""

    def register(self, name: str, task: str | None = None) -> Callable[[Any], Any]:
        """Decorate a row reader ``(path, encoding=...) -> list[Row]``, a format of every task (or of ``task``)."""
        store = super().register(name)

        def deco(read: Callable[..., list[Row]]) -> Callable[..., list[Row]]:
            store(DataFormat(read, task))
            return read
        return deco

    def register_task_format(self, name: str, task: str) -> None:
        """A format that task type ``task`` reads with its own reader (it is refused for other tasks)."""
        super().register(name)(DataFormat(None, task))

    def names_for(self, task: str) -> list[str]:
        """The formats ``task`` may name: those of every task and its own, with ``auto`` first."""
        return ["auto"] + [n for n in self.names() if self._items[n].task in (None, task)]

    def check(self, fmt: str, task: str) -> None:
        """Refuse (ConfigError, one line) a format nobody registered, or one that belongs to another task."""
        if fmt == "auto":
            return
        if fmt not in self._items:
            raise ConfigError(f"unknown data format '{fmt}'; choose one of: {', '.join(['auto'] + self.names())}")
        owner = self._items[fmt].task
        if owner is not None and owner != task:
            raise ConfigError(f"data format '{fmt}' belongs to task type '{owner}', not '{task}'; "
                              f"a {task} run reads: {', '.join(self.names_for(task))}")


READERS = FormatRegistry("data format")


def required_text(row: Row, column: str, what: str = "empty text") -> str:
    """The non-empty text in ``column`` of ``row``; a missing column or an empty value is a DataError naming the
    file, the line and (for an empty value) the field, ``what`` saying what was expected."""
    if column not in row.values:
        raise DataError(row.path, f"missing column '{column}' (columns: {', '.join(map(str, row.values))})",
                        line=row.line)
    value = row.values[column]
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        raise DataError(row.path, what, line=row.line, field=column)
    return str(value)


def detect_format(path: str | Path) -> str:
    """Guess a reader from the path: a folder is a `save_to_disk` dataset, else by suffix."""
    p = Path(path)
    if p.is_dir():
        return "hf_disk"
    suffix = p.suffix.lower()
    table = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in table:
        raise DataError(str(p), f"cannot tell the format from the suffix '{suffix}'; set data.format "
                        f"to one of: {', '.join(n for n in READERS.names() if READERS.get(n).read_rows)}")
    return table[suffix]


def read_text(path: str | Path, encoding: str) -> str:
    """Decode a whole file strictly; a bad byte is reported with its line number."""
    p = Path(path)
    if not p.is_file():
        raise DataError(str(p), "file not found")
    raw = p.read_bytes()
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(str(p), f"unknown encoding '{encoding}' (data.encoding)") from None
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        bad = raw[err.start:err.end + 3]
        raise DataError(str(p), f"bytes {bad!r} are not valid {encoding}; set data.encoding to the file's "
                        f"encoding (e.g. latin-1, gbk) or re-save it as UTF-8", line=line) from None
    return text.lstrip("\ufeff")


def _read_delimited(path: str | Path, encoding: str, delimiter: str) -> list[Row]:
    allow_large_csv_fields()  # a cell of several megabytes is a valid document (truncated at tokenisation)
    return _parse_delimited(path, read_text(path, encoding), delimiter)


def _parse_delimited(path: str | Path, text: str, delimiter: str) -> list[Row]:
    reader = csv.reader(io.StringIO(_without_nul(path, text), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(str(path), "file is empty; expected a header line with column names") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(str(path), f"duplicate column names {dup} in the header", line=1)
    rows: list[Row] = []
    start = reader.line_num + 1
    try:
        for fields in reader:
            if fields:  # skip blank lines
                if len(fields) != len(header):
                    raise DataError(str(path), f"has {len(fields)} fields but the header has {len(header)} "
                                    f"({', '.join(header)}); quote fields that contain '{delimiter}'", line=start)
                rows.append(Row(dict(zip(header, fields)), str(path), start))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(str(path), f"malformed {('TSV' if delimiter == chr(9) else 'CSV')}: {err}", line=start) from None
    return rows


def _without_nul(path: str | Path, text: str) -> str:
    """``text`` less its NUL bytes, with a warning naming the file and the first line that had one.

    Python's csv module reads NUL as an ordinary character since 3.11; in a text file it is almost always
    damage (a truncated write, a binary paste), and it would reach the tokenizer unseen.
    """
    first = text.find("\x00")
    if first < 0:
        return text
    line = text.count("\n", 0, first) + 1
    log.warning("%s:%d: removed %d NUL byte(s) (\\x00) from the file, the first on this line; check the file "
                "for damage", path, line, text.count("\x00"))
    return text.replace("\x00", "")


@READERS.register("csv")
def read_csv(path: str | Path, encoding: str = "utf-8") -> list[Row]:
    """Comma-separated file with a header line; quoted fields may span lines."""
    return _read_delimited(path, encoding, ",")


@READERS.register("tsv")
def read_tsv(path: str | Path, encoding: str = "utf-8") -> list[Row]:
    """Tab-separated file with a header line."""
    return _read_delimited(path, encoding, "\t")


@READERS.register("jsonl")
def read_jsonl(path: str | Path, encoding: str = "utf-8") -> list[Row]:
    """One JSON object per line (blank lines skipped)."""
    rows = []
    for n, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(str(path), f"not valid JSON ({err.msg} at column {err.colno})", line=n) from None
        if not isinstance(obj, dict):
            raise DataError(str(path), f"expected a JSON object per line, got {type(obj).__name__}", line=n)
        rows.append(Row(obj, str(path), n))
    return rows


@READERS.register("parquet")
def read_parquet(path: str | Path, encoding: str = "utf-8") -> list[Row]:
    """Apache Parquet file; 'line' in errors is the 1-based row number."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise DataError(str(path), "file not found")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(str(path), f"not a readable Parquet file: {err}") from None
    return [Row(r, str(path), i) for i, r in enumerate(table.to_pylist(), start=1)]


@READERS.register("hf_disk")
def read_hf_disk(path: str | Path, encoding: str = "utf-8", split: str | None = None) -> list[Row]:
    """A folder written by `datasets.Dataset.save_to_disk` (or a DatasetDict; pick ``split``)."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(str(path), f"not a datasets folder written by save_to_disk: {err}") from None
    if isinstance(ds, datasets.DatasetDict):
        split = split or "train"
        if split not in ds:
            raise DataError(str(path), f"DatasetDict has no split '{split}' (has {list(ds)})")
        ds = ds[split]
    return [Row(r, str(path), i) for i, r in enumerate(ds, start=1)]


def read_hub(path: str, name: str | None, split: str) -> list[Row]:
    """A dataset from the Hugging Face hub (needs network access). Lists of class ids (token tags such as
    conll2003's ``ner_tags``) arrive as their names, which is what the NER reader reads."""
    import datasets

    try:
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as err:  # network and hub errors come in many types
        raise DataError(f"hub:{path}", f"could not load split '{split}': {err}") from None
    where = f"hub:{path}/{split}"
    if len(ds) == 0:
        raise DataError(where, "no usable rows: the split holds no rows")
    names = _tag_names(ds.features)
    rows = [Row(r, where, i) for i, r in enumerate(ds, start=1)]
    for row in rows:
        for column, labels in names.items():
            row.values[column] = [labels[i] for i in row.values[column]]
    return rows


def _tag_names(features) -> dict[str, list[str]]:
    """Columns that hold lists of class ids, with the class names of each."""
    import datasets

    return {column: feature.feature.names for column, feature in (features or {}).items()
            if isinstance(getattr(feature, "feature", None), datasets.ClassLabel)}


def read_rows(path: str | Path, fmt: str = "auto", encoding: str = "utf-8") -> list[Row]:
    """Read any supported file into rows, choosing the reader from ``fmt`` or the suffix."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    read = READERS.get(fmt).read_rows
    if read is None:
        raise DataError(str(path), f"data format '{fmt}' is read by the {READERS.get(fmt).task} task, not as rows")
    rows = read(path, encoding=encoding)
    if not rows:  # said here, where the file is known (later steps see only an empty list)
        raise DataError(str(path), "no usable rows: the file holds no data rows")
    return rows
