"""Turn raw rows into validated examples and the train/validation/test splits of a run.

An ``Example`` is the task-neutral record every task consumes: ``text``, optional
``text_pair``, the raw ``label`` (a string, list of strings, or whatever the task's
``parse_label`` accepts) and where it came from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from graftkit.config import DataConfig
from graftkit.data.readers import Row, read_hub, read_rows, read_text
from graftkit.data.splits import split_items
from graftkit.errors import DataError


@dataclass
class Example:
    text: str
    label: Any = None
    text_pair: str | None = None
    path: str = ""
    line: int = 0
    extra: dict = field(default_factory=dict)


def _tag_tuples(x: Any) -> Any:
    """JSON keeps no tuples; tag them so a stored example reads back exactly (spans, multi-labels)."""
    if isinstance(x, tuple):
        return {"__tuple__": [_tag_tuples(v) for v in x]}
    if isinstance(x, list):
        return [_tag_tuples(v) for v in x]
    if isinstance(x, dict):
        return {k: _tag_tuples(v) for k, v in x.items()}
    return x


def _untag_tuples(x: Any) -> Any:
    if isinstance(x, dict):
        if set(x) == {"__tuple__"}:
            return tuple(_untag_tuples(v) for v in x["__tuple__"])
        return {k: _untag_tuples(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_untag_tuples(v) for v in x]
    return x


def example_to_json(example: Example) -> dict:
    """A JSON-safe dict that ``example_from_json`` turns back into an equal Example."""
    return _tag_tuples(dataclasses.asdict(example))


def example_from_json(data: dict) -> Example:
    return Example(**_untag_tuples(data))


def examples_digest(examples: list[Example]) -> str:
    """A SHA-256 of what the examples say (text, pair, label), not of where they came from, and in any order:
    the same rows read from another path hash alike; a changed row, label or split membership does not."""
    rows = sorted(hashlib.sha256(json.dumps(_tag_tuples([e.text, e.text_pair, e.label]), ensure_ascii=False,
                                            sort_keys=True, default=str).encode()).hexdigest() for e in examples)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@dataclass
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: per split, rows set aside as out of scope (the task's out-of-scope label): no class to learn, but what
    #: its out-of-scope detector is chosen and reported on
    out_of_scope: dict[str, list[Example]] = field(default_factory=dict)

    def digests(self) -> dict[str, str]:
        """``examples_digest`` of each split, as recorded in a run folder's training_setup.json."""
        return {name: examples_digest(getattr(self, name)) for name in ("train", "validation", "test")}


def _text(row: Row, column: str, required: bool = True) -> str | None:
    if column not in row.values:
        raise DataError(row.path, f"missing column '{column}' (columns: {', '.join(map(str, row.values))}); "
                        "set data.text_column / data.text_pair_column / data.label_column", line=row.line)
    value = row.values[column]
    if value is None or (isinstance(value, float) and value != value):
        value = ""
    value = str(value)
    if required and not value.strip():
        raise DataError(row.path, "empty text", line=row.line, field=column)
    return value


def rows_to_examples(rows: list[Row], cfg: DataConfig, parse_label: Callable[[Any, Row], Any] | None,
                     with_labels: bool = True) -> tuple[list[Example], int]:
    """Validate rows into Examples; with ``cfg.drop_invalid`` bad rows are counted, not fatal."""
    out, dropped = [], 0
    for row in rows:
        try:
            text = _text(row, cfg.text_column)
            pair = _text(row, cfg.text_pair_column) if cfg.text_pair_column else None
            label = None
            if with_labels:
                cols = cfg.label_column if isinstance(cfg.label_column, list) else [cfg.label_column]
                for col in cols:
                    if col not in row.values:
                        raise DataError(row.path, f"missing column '{col}' (columns: "
                                        f"{', '.join(map(str, row.values))}); set data.label_column", line=row.line)
                # several label columns (regression targets) arrive as a column -> value mapping
                raw = {c: row.values[c] for c in cols} if isinstance(cfg.label_column, list) \
                    else row.values[cfg.label_column]
                label = parse_label(raw, row) if parse_label else raw
            out.append(Example(text=text, text_pair=pair, label=label, path=row.path, line=row.line))
        except DataError:
            if not cfg.drop_invalid:
                raise
            dropped += 1
    if not out:
        where = rows[0].path if rows else "the data (no rows were read)"
        raise DataError(where, "no usable rows" + (f" ({dropped} invalid rows dropped)" if dropped else ""))
    return out, dropped


#: plain-text files hold one document per non-blank line (masked-LM text, unlabelled texts)
TEXT_SUFFIXES = (".txt", ".text")


def read_documents(path: str | Path, encoding: str = "utf-8") -> list[Example]:
    """One Example per non-blank line of a plain-text file (a document per line)."""
    text = read_text(path, encoding)  # raises DataError naming the file (and line, for a bad byte)
    docs = [Example(text=line.strip(), path=str(path), line=i)
            for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not docs:
        raise DataError(str(path), "holds no text (a plain-text file holds one document per non-blank line)")
    return docs


def read_examples(path: str, cfg: DataConfig, parse_label=None, with_labels: bool = True,
                  reader: Callable[..., tuple[list[Example], int]] | None = None) -> tuple[list[Example], int]:
    """Read one file/folder and validate its rows.

    ``reader(path, cfg, with_labels)`` replaces the row readers for tasks whose files are not
    one-row-per-label tables (a task's optional ``read`` method, e.g. NER's CoNLL reader).
    """
    if reader is not None:
        return reader(path, cfg, with_labels)
    return rows_to_examples(read_rows(path, cfg.format, cfg.encoding), cfg, parse_label, with_labels)


def load_splits(cfg: DataConfig, parse_label=None, strat_key: Callable[[Example], Any] | None = None,
                reader: Callable[..., tuple[list[Example], int]] | None = None,
                from_rows: Callable[..., tuple[list[Example], int]] | None = None) -> Splits:
    """Read train (and validation/test when given); split the train file for the missing parts.

    ``reader(path, cfg, with_labels)`` reads a file, ``from_rows(rows, cfg, with_labels)`` turns the rows of a
    hub split into examples: a task's ``read`` and ``examples_from_rows`` hooks (row tables by default).
    """
    dropped: dict[str, int] = {}

    def load(name: str, path: str | None) -> list[Example] | None:
        if cfg.hub is not None:
            split = getattr(cfg.hub, f"{name}_split")
            if not split:
                return None
            rows = read_hub(cfg.hub.path, cfg.hub.name, split)
            ex, n = from_rows(rows, cfg, True) if from_rows else rows_to_examples(rows, cfg, parse_label)
        elif path:
            ex, n = read_examples(path, cfg, parse_label, reader=reader)
        else:
            return None
        if n:
            dropped[name] = n
        return ex

    train = load("train", cfg.train)
    val, test = load("validation", cfg.validation), load("test", cfg.test)
    notes = []
    if val is None or test is None:
        key = strat_key or (lambda e: str(e.label))
        v_frac = cfg.split.validation if val is None else 0.0
        t_frac = cfg.split.test if test is None else 0.0
        keys = [key(e) for e in train]
        whole = train
        train, v_part, t_part = split_items(train, keys, v_frac, t_frac, cfg.split.seed, cfg.split.stratify)
        _check_classes_survive(whole, keys, train, key)
        val = val if val is not None else v_part
        test = test if test is not None else t_part
        notes.append(f"split train file with seed {cfg.split.seed}: validation={v_frac}, test={t_frac}, "
                     f"stratified={cfg.split.stratify}")
    return Splits(train=train, validation=val, test=test, dropped=dropped, notes=notes)


def _check_classes_survive(whole: list[Example], keys: list, train: list[Example], key) -> None:
    """After carving validation/test out of the train file, the training part must still hold more than
    one class when the file did; otherwise name the rare classes and their counts."""
    counts = Counter(keys)
    left = {key(e) for e in train}
    if len(counts) < 2 or len(left) > 1:
        return
    gone = ", ".join(f"'{k}' ({counts[k]} row{'s' if counts[k] != 1 else ''})" for k in sorted(counts, key=str)
                     if k not in left)
    raise DataError(whole[0].path, f"after the validation/test split the training part holds only class "
                    f"'{next(iter(left))}'; too few rows of {gone} to go round: add rows, lower "
                    "data.split.validation / data.split.test, or give data.validation / data.test files")
