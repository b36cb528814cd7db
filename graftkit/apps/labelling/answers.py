"""The selection as a file to answer, and merging the answers into the labelled file (``graftkit label import``).

A selection file has the run's own column names (text, text pair, label) so its answered rows read like the
labelled data, plus ``suggested`` (the model's label), ``score`` (the strategy's), ``given`` (re-checks: the label
the row has now) and ``source`` (where the row came from, file:line). A row whose label is still empty is not
answered yet and is skipped. Every answered row is checked before anything is written: a label the run does not
know, an input already labelled, an input in the run's test split, or an input answered twice stops the import
with one line naming the answers file, the line and the field. The labelled file is then rewritten atomically
with the new rows appended (csv, tsv or jsonl).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from graftkit.apps.labelling.pool import RunParts, input_key, labelled_data
from graftkit.apps.labelling.select import Selection
from graftkit.config import DataConfig
from graftkit.data.dataset import Example
from graftkit.data.readers import Row, read_rows
from graftkit.errors import DataError, GraftkitError
from graftkit.io import write_csv, write_text
from graftkit.tasks.capabilities import ScoresLabels

EXTRA_COLUMNS = ["suggested", "score", "given", "source"]


def _columns(data: DataConfig) -> list[str]:
    return [data.text_column, *([data.text_pair_column] if data.text_pair_column else []), str(data.label_column)]


def write_selection(selection: Selection, path: str | Path, data: DataConfig) -> Path:
    """The selection as a CSV to answer: the label column is left empty for the annotator."""
    rows = [[c.example.text, *([c.example.text_pair] if data.text_pair_column else []), "", c.suggested,
             f"{c.score:.6g}", c.given, f"{c.example.path}:{c.example.line}"] for c in selection.candidates]
    write_csv(path, _columns(data) + EXTRA_COLUMNS, rows)
    return Path(path)


def _label_text(label, data: DataConfig) -> str:
    return (data.label_separator or "|").join(label) if isinstance(label, (tuple, list)) else str(label)


def _answered(path: str, parts: RunParts) -> tuple[list[tuple[Row, Example]], int]:
    """(row, example) of each answered row, and how many rows are not answered yet."""
    data = parts.cfg.data
    label_column = str(data.label_column)
    answered, open_rows = [], 0
    for row in read_rows(path, "auto", data.encoding):
        raw = row.values.get(label_column)
        if raw is None or (isinstance(raw, float) and raw != raw) or not str(raw).strip():
            open_rows += 1
            continue
        examples, _ = parts.task.examples_from_rows([row], data.model_copy(update={"drop_invalid": False}))
        answered.append((row, examples[0]))
    return answered, open_rows


def check_answers(path: str, parts: RunParts, labelled_path: str | None = None) -> tuple[list[Example], int, str]:
    """The answered rows to merge, the unanswered count and the labelled file; DataError on the first bad row."""
    known = parts.task.capability(ScoresLabels, "label import").labels
    data = labelled_data(parts, labelled_path)
    labelled, test, seen = data.keys(), data.test_keys(), {}
    label_column, text_column = str(parts.cfg.data.label_column), parts.cfg.data.text_column
    answered, open_rows = _answered(path, parts)
    for row, e in answered:
        for label in e.label if isinstance(e.label, tuple) else (e.label,):
            if label not in known:
                raise DataError(row.path, f"label {label!r} is not one of the run's labels ({', '.join(known)})",
                                line=row.line, field=label_column)
        key = input_key(e)
        if key in labelled:
            first = labelled[key]
            raise DataError(row.path, f"already labelled ({first.path}, line {first.line})", line=row.line,
                            field=text_column)
        if key in test:
            raise DataError(row.path, "also in the run's test split: a test row must not be trained on",
                            line=row.line, field=text_column)
        if key in seen:
            raise DataError(row.path, f"answered twice (first at line {seen[key]})", line=row.line, field=text_column)
        seen[key] = row.line
    return [e for _, e in answered], open_rows, data.path


def import_answers(path: str, run_dir: str | Path, labelled_path: str | None = None) -> dict:
    """Merge the answered rows of ``path`` into the labelled file (default: the run's ``data.train``).

    Returns:
        ``{"merged": n, "unanswered": n, "into": labelled file}``.

    Raises:
        DataError: a bad row (unknown label, already labelled, in the test split, answered twice), by line.
        GraftkitError: nothing answered, or a labelled file that cannot be appended to.
    """
    parts = RunParts.open(run_dir)
    new, open_rows, into = check_answers(path, parts, labelled_path)
    if not new:
        raise GraftkitError(f"label import: {path} has no answered rows (fill the '{parts.cfg.data.label_column}' "
                            f"column; {open_rows} rows are still empty)")
    append_rows(into, new, parts.cfg.data)
    return {"merged": len(new), "unanswered": open_rows, "into": into}


def append_rows(path: str, examples: list[Example], data: DataConfig) -> None:
    """Rewrite ``path`` atomically with ``examples`` appended (csv, tsv or jsonl)."""
    target = Path(path)
    text = target.read_text(encoding=data.encoding)
    values = [{data.text_column: e.text, str(data.label_column): _label_text(e.label, data),
               **({data.text_pair_column: e.text_pair} if data.text_pair_column else {})} for e in examples]
    suffix = target.suffix.lower()
    if suffix == ".jsonl":
        added = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)
    elif suffix in (".csv", ".tsv"):
        added = _delimited(text, values, "\t" if suffix == ".tsv" else ",", path)
    else:
        raise GraftkitError(f"label import: {path}: answers are merged into csv, tsv or jsonl files, not "
                            f"'{suffix or 'no suffix'}'")
    write_text(target, text + ("" if not text or text.endswith("\n") else "\n") + added)


def _delimited(text: str, values: list[dict], delimiter: str, path: str) -> str:
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    missing = [c for c in values[0] if c not in header]
    if missing:
        raise GraftkitError(f"label import: {path} has no column {', '.join(missing)} (columns: {', '.join(header)})")
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerows([[v.get(c, "") for c in header] for v in values])
    return buf.getvalue()
