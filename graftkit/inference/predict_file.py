"""Batch prediction over a file: streamed with bounded memory, resumable, with progress."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator

from graftkit.errors import DataError, GraftkitError
from graftkit.inference.predictor import Predictor


def iter_inputs(path: Path, text_column: str, pair_column: str | None, encoding: str = "utf-8") -> Iterator[Any]:
    """Yield inputs one at a time: .txt lines, or the text column(s) of .jsonl / .csv / .tsv rows."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(str(path), "file not found")
    with open(path, encoding=encoding, newline="") as fh:
        if suffix in (".txt", ""):
            if pair_column:
                raise DataError(str(path), f"this run takes text pairs; give a .jsonl/.csv/.tsv file with columns "
                                f"'{text_column}' and '{pair_column}'")
            for line in fh:
                if line.strip():
                    yield line.rstrip("\r\n")
            return
        if suffix in (".jsonl", ".ndjson", ".json"):
            rows = ((n, json.loads(line)) for n, line in enumerate(fh, 1) if line.strip())
        elif suffix in (".csv", ".tsv"):
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            rows = ((reader.line_num, r) for r in reader)
        else:
            raise DataError(str(path), f"unsupported input suffix '{suffix}' (use .txt, .jsonl, .csv or .tsv)")
        for n, row in rows:
            for col in (c for c in (text_column, pair_column) if c):
                if col not in row:
                    raise DataError(str(path), f"missing column '{col}'", line=n)
            if pair_column:
                for col in (text_column, pair_column):  # a pair with one side empty is not a pair
                    if row[col] is None or not str(row[col]).strip():
                        raise DataError(str(path), "empty text in a text pair", line=n, field=col)
            yield (row[text_column], row[pair_column]) if pair_column else row[text_column]


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


def _done_lines(output: Path) -> int:
    """Complete lines already written (a torn last line from a kill is cut off)."""
    if not output.is_file():
        return 0
    data = output.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with open(output, "r+b") as fh:
            fh.truncate(keep)
    return data.count(b"\n", 0, keep)


def predict_file(predictor: Predictor, input_path: Path, output: Path | None, batch_size: int = 64,
                 progress_factory=None, resume: bool = True) -> int:
    """Predict every input of ``input_path`` into JSON Lines at ``output`` (stdout when None).

    With ``resume`` an existing output is continued after its last complete line, so a
    killed job restarts where it stopped. Returns the number of predictions written now.
    """
    import sys

    cfg = predictor.cfg.data
    inputs = iter_inputs(Path(input_path), cfg.text_column, cfg.text_pair_column)
    skip = _done_lines(Path(output)) if (output and resume) else 0
    if output and not resume and Path(output).exists():
        os.remove(output)
    for _ in range(skip):
        next(inputs, None)
    total = None
    if progress_factory and Path(input_path).suffix.lower() in (".txt", ".jsonl", ".ndjson", ".csv", ".tsv"):
        with open(input_path, "rb") as fh:
            total = max(sum(1 for line in fh if line.strip()) - skip - (Path(input_path).suffix.lower() in (".csv", ".tsv")), 0)
    sink = open(output, "a", encoding="utf-8") if output else sys.stdout
    written = 0
    ctx = progress_factory(total, f"predicting {Path(input_path).name}") if progress_factory else None
    advance = ctx.__enter__() if ctx else None
    try:
        for x, pred in predictor.iter_predict(inputs, batch_size):
            sink.write(json.dumps({"input": x, **pred}, ensure_ascii=False) + "\n")
            written += 1
            if advance and written % batch_size == 0:
                sink.flush()
                advance(batch_size)
        if advance:
            advance(written % batch_size)
    finally:
        if ctx:
            ctx.__exit__(None, None, None)
        if output:
            sink.flush()
            os.fsync(sink.fileno())
            sink.close()
    return written
