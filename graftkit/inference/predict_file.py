"""Batch prediction over a file: streamed with bounded memory, resumable, with progress.

Resuming is safe: next to ``OUTPUT`` a sidecar ``OUTPUT.resume.json`` records the run (path and a
fingerprint of its files), the input's path, and the size and SHA-256 of the input prefix whose
predictions are in ``OUTPUT``. A restart continues only when the run and that prefix are the same;
anything else is refused with a pointer to ``overwrite``. The input is read with the run's
``data.encoding``, a BOM is dropped, and a malformed line is an error naming it (or is skipped and
counted with ``skip_invalid``).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from graftkit.errors import DataError, GraftkitError
from graftkit.io import allow_large_csv_fields, write_json

SUFFIXES = (".txt", "", ".jsonl", ".ndjson", ".json", ".csv", ".tsv")


@dataclass
class Item:
    """One input and where the input file stands after it (for the resume sidecar)."""

    value: Any
    end: int  # bytes of the input consumed up to and including this row
    digest: str  # SHA-256 of those bytes


class _Source:
    """The input file's decoded lines, tracking consumed bytes and their running hash."""

    def __init__(self, path: Path, encoding: str):
        self.path, self.encoding = path, encoding
        self.end, self.hasher, self.line = 0, hashlib.sha256(), 0

    def lines(self) -> Iterator[str]:
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)()
        except LookupError:
            raise DataError(str(self.path), f"unknown encoding '{self.encoding}' (the run's data.encoding)") from None
        with open(self.path, "rb") as fh:
            for raw in fh:
                self.line += 1
                try:
                    text = decoder.decode(raw)
                except UnicodeDecodeError:
                    raise DataError(str(self.path), f"not valid {self.encoding} (the run's data.encoding); "
                                    "re-save the file in that encoding", line=self.line) from None
                if self.line == 1:
                    text = text.lstrip("\ufeff")  # a BOM is not part of the first text
                self.end += len(raw)
                self.hasher.update(raw)
                yield text

    def item(self, value: Any) -> Item:
        return Item(value, self.end, self.hasher.hexdigest())


def _rows(src: _Source, suffix: str, skip_invalid: bool, skipped: list[int]) -> Iterator[tuple[int, Any]]:
    if suffix in (".jsonl", ".ndjson", ".json"):
        for line in src.lines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            except ValueError as err:
                if not skip_invalid:
                    raise DataError(str(src.path), f"malformed JSON line ({err}); fix it or pass --skip-invalid",
                                    line=src.line) from None
                skipped.append(src.line)
                continue
            yield src.line, row
    else:
        reader = csv.DictReader(src.lines(), delimiter="\t" if suffix == ".tsv" else ",")
        for row in reader:
            yield src.line, row


def iter_items(path: Path, text_column: str, pair_column: str | None, encoding: str = "utf-8",
               skip_invalid: bool = False, skipped: list[int] | None = None) -> Iterator[Item]:
    """Inputs one at a time with their place in the file: .txt lines, or the text column(s) of .jsonl /
    .csv / .tsv rows. Lines skipped under ``skip_invalid`` are appended to ``skipped``."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(str(path), "file not found")
    if suffix not in SUFFIXES:
        raise DataError(str(path), f"unsupported input suffix '{suffix}' (use .txt, .jsonl, .csv or .tsv)")
    src, skipped = _Source(path, encoding), skipped if skipped is not None else []
    if suffix in (".txt", ""):
        if pair_column:
            raise DataError(str(path), f"this run takes text pairs; give a .jsonl/.csv/.tsv file with columns "
                            f"'{text_column}' and '{pair_column}'")
        for line in src.lines():
            if line.strip():
                yield src.item(line.rstrip("\r\n"))
        return
    allow_large_csv_fields()  # a multi-megabyte cell is one document
    for n, row in _rows(src, suffix, skip_invalid, skipped):
        problem = _row_problem(row, text_column, pair_column)
        if problem:
            if not skip_invalid:
                raise DataError(str(path), problem[0], line=n, field=problem[1])
            skipped.append(n)
            continue
        yield src.item((row[text_column], row[pair_column]) if pair_column else row[text_column])


def _row_problem(row: dict, text_column: str, pair_column: str | None) -> tuple[str, str] | None:
    for col in (c for c in (text_column, pair_column) if c):
        if col not in row:
            return f"missing column '{col}'", col
        if not isinstance(row[col], str):
            return f"'{col}' is {type(row[col]).__name__}, not text", col
    if pair_column:
        for col in (text_column, pair_column):  # a pair with one side empty is not a pair
            if not row[col].strip():
                return "empty text in a text pair", col
    return None


def iter_inputs(path: Path, text_column: str, pair_column: str | None, encoding: str = "utf-8") -> Iterator[Any]:
    """The inputs of ``path`` one at a time (see :func:`iter_items`)."""
    return (item.value for item in iter_items(path, text_column, pair_column, encoding))


def pair_inputs(texts: list[str], pairs: list[str] | None, pair_column: str | None) -> list[Any]:
    """Command-line inputs: plain texts, or (text, pair) tuples for a run trained on text pairs.

    Raises:
        GraftkitError: pairs given to a single-text run, missing for a pair run, or counts differ.
    """
    if not pair_column:
        if pairs:
            raise GraftkitError("--pair: this run was trained on single texts (no data.text_pair_column)")
        return list(texts)
    if not pairs or len(pairs) != len(texts):
        raise GraftkitError(f"this run takes text pairs ('{pair_column}'): give one --pair per text "
                            f"(got {len(texts)} texts and {len(pairs or [])} --pair)")
    empty = [i + 1 for i, (a, b) in enumerate(zip(texts, pairs)) if not a.strip() or not b.strip()]
    if empty:
        raise GraftkitError(f"pair {empty[0]} has an empty side; both texts of a pair are needed")
    return list(zip(texts, pairs))


def sidecar_path(output: Path) -> Path:
    """Where the resume record of ``output`` lives."""
    return output.with_name(output.name + ".resume.json")


# What evaluate (and export's parity check) write into a run: reports on the model, not part of it, so a
# prediction file interrupted before them may still be resumed after them.
_REPORT_FILES, _REPORT_FOLDERS = {"metrics.json"}, {"eval"}


def run_fingerprint(predictor) -> dict:
    """What identifies the predictions' source: the run folder, its model files (name, size, mtime; reports
    left out), the back-end."""
    root = predictor.run.path
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in
                   (".safetensors", ".onnx", ".json", ".yaml", ".txt", ".model")
                   and not _is_report(p.relative_to(root)))
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return {"run": str(predictor.run.path.resolve()), "files": digest.hexdigest(),
            "backend": predictor.backend_name}


def _is_report(rel: Path) -> bool:
    return (len(rel.parts) == 1 and rel.name in _REPORT_FILES) or rel.parts[0] in _REPORT_FOLDERS


def _prefix_digest(path: Path, size: int) -> str | None:
    if not path.is_file() or path.stat().st_size < size:
        return None
    digest, left = hashlib.sha256(), size
    with open(path, "rb") as fh:
        while left:
            chunk = fh.read(min(left, 1 << 20))
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _resume_point(output: Path, input_path: Path, run: dict) -> dict:
    """The sidecar of an output that may be continued; refuses (naming --overwrite) otherwise."""
    record = sidecar_path(output)
    fix = "pass --overwrite to start it over, or choose another --output"
    if not record.is_file():
        raise GraftkitError(f"{output} exists but has no resume record ({record.name}); it was not written by "
                            f"an interrupted run of this command; {fix}")
    state = json.loads(record.read_text(encoding="utf-8"))
    if state.get("run") != run:
        raise GraftkitError(f"{output} was written by another run or model ({state.get('run', {}).get('run')}); "
                            f"{fix}")
    if state.get("input") != str(input_path.resolve()) or \
            _prefix_digest(input_path, state["input_bytes"]) != state["input_sha256"]:
        raise GraftkitError(f"{output} was written from a different input (the first {state['input_bytes']} "
                            f"bytes of {input_path} differ from the ones it predicted); {fix}")
    return state


def _keep_lines(output: Path, n: int) -> None:
    """Cut ``output`` to its first ``n`` lines (drops a torn line, or lines written after the last record)."""
    keep, seen = 0, 0
    with open(output, "rb") as fh:
        for line in fh:
            if seen == n or not line.endswith(b"\n"):
                break
            keep, seen = keep + len(line), seen + 1
    if seen < n:
        raise GraftkitError(f"{output} holds {seen} complete lines but its resume record says {n}; "
                            "pass --overwrite to start it over")
    with open(output, "r+b") as fh:
        fh.truncate(keep)


def predict_file(predictor, input_path: Path, output: Path | None, batch_size: int = 64,
                 progress_factory=None, overwrite: bool = False, skip_invalid: bool = False,
                 log: Callable[[str], None] | None = None) -> int:
    """Predict every input of ``input_path`` into JSON Lines at ``output`` (stdout when None).

    ``predictor`` is any run's inference object (graftkit/inference/base.py): its ``input_columns()``
    say which columns hold the inputs, and each line is ``{"input": ..., **prediction}``.

    An existing ``output`` is continued after the last recorded batch when its resume record matches
    this run and input (see the module docstring); ``overwrite`` starts it over.

    Returns:
        the number of predictions written now.
    Raises:
        GraftkitError: ``output`` exists and cannot be continued safely.
        DataError: a malformed row (unless ``skip_invalid``), naming file and line.
    """
    input_path = Path(input_path)
    text_column, pair_column = predictor.input_columns()
    skipped: list[int] = []
    items = iter_items(input_path, text_column, pair_column, predictor.cfg.data.encoding, skip_invalid, skipped)
    run, start = run_fingerprint(predictor), {"input_bytes": 0, "rows": 0}
    if output is not None:
        output = Path(output)
        if overwrite:
            output.unlink(missing_ok=True)
            sidecar_path(output).unlink(missing_ok=True)
        elif output.exists():
            start = _resume_point(output, input_path, run)
            _keep_lines(output, start["rows"])
    written = _predict_items(predictor, items, input_path, output, run, start, batch_size, progress_factory)
    if skipped and log:
        log(f"skipped {len(skipped)} invalid lines of {input_path} (first: line {skipped[0]})")
    return written


class _Writer:
    """Appends predicted batches to the output (or stdout) and, for a file, records after each batch how far
    the input and the output got (the resume record), once the lines are on disk."""

    def __init__(self, predictor, sink, output: Path | None, input_path: Path, run: dict, rows: int):
        self.predictor, self.sink, self.output, self.input_path, self.run = predictor, sink, output, input_path, run
        self.rows, self.written = rows, 0

    def write(self, batch: list[Item]) -> None:
        preds = self.predictor.predict_batch([it.value for it in batch])
        self.sink.write("".join(json.dumps({"input": it.value, **p.to_dict()}, ensure_ascii=False) + "\n"
                                for it, p in zip(batch, preds)))
        self.rows, self.written = self.rows + len(batch), self.written + len(batch)
        if self.output:
            self.sink.flush()
            os.fsync(self.sink.fileno())  # the lines are on disk before the record says they are
            write_json(sidecar_path(self.output), {"run": self.run, "input": str(self.input_path.resolve()),
                                                   "rows": self.rows, "input_bytes": batch[-1].end,
                                                   "input_sha256": batch[-1].digest})


def _predict_items(predictor, items, input_path, output, run, start, batch_size, progress_factory) -> int:
    skip_to = start["input_bytes"]
    with ExitStack() as stack:
        sink = stack.enter_context(open(output, "a", encoding="utf-8")) if output else sys.stdout
        advance = stack.enter_context(progress_factory(_count_lines(input_path, skip_to), f"predicting "
                                                       f"{input_path.name}")) if progress_factory else (lambda n=1: None)
        writer, batch = _Writer(predictor, sink, output, input_path, run, start["rows"]), []
        for item in items:
            if item.end <= skip_to:
                continue  # predicted before the interruption
            batch.append(item)
            if len(batch) == batch_size:
                writer.write(batch)
                advance(len(batch))
                batch = []
        if batch:
            writer.write(batch)
            advance(len(batch))
    return writer.written


def _count_lines(path: Path, skip_bytes: int) -> int | None:
    if path.suffix.lower() not in (".txt", ".jsonl", ".ndjson", ".csv", ".tsv"):
        return None
    with open(path, "rb") as fh:
        fh.seek(skip_bytes)
        n = sum(1 for line in fh if line.strip())
    header = skip_bytes == 0 and path.suffix.lower() in (".csv", ".tsv")
    return max(n - header, 0)
