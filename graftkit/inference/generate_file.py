"""Batch generation over a file: bounded memory, progress, and resume after a kill (like `predict`)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from graftkit.inference.generator import Generator
from graftkit.inference.predict_file import _done_lines, iter_inputs
from graftkit.tasks.generation.rows import CHAT


def input_column(generator: Generator) -> str:
    """The column a run's inputs are read from: its prompt column, or the messages column of chat runs."""
    cfg = generator.cfg.task
    return cfg.messages_column if generator.task.row_format == CHAT else cfg.prompt_column


def _count(path: Path, skip: int) -> int | None:
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl", ".ndjson", ".csv", ".tsv"):
        return None
    with open(path, "rb") as fh:
        n = sum(1 for line in fh if line.strip()) - (suffix in (".csv", ".tsv"))
    return max(n - skip, 0)


def generate_file(generator: Generator, input_path: Path, output: Path | None, batch_size: int = 16,
                  progress_factory=None, resume: bool = True, **overrides: Any) -> int:
    """Write ``{"input": ..., "generated": ...}`` JSON Lines for every input of ``input_path``.

    With ``resume`` an existing output continues after its last complete line. Returns the number of
    lines written by this call. ``overrides`` are decoding settings (checked against the run's limits).
    """
    generator.config_for(**overrides)  # reject bad overrides before reading anything
    inputs = iter_inputs(Path(input_path), input_column(generator), None)
    skip = _done_lines(Path(output)) if (output and resume) else 0
    if output and not resume and Path(output).exists():
        os.remove(output)
    for _ in range(skip):
        next(inputs, None)
    sink = open(output, "a", encoding="utf-8") if output else sys.stdout
    ctx = progress_factory(_count(Path(input_path), skip), f"generating {Path(input_path).name}") \
        if progress_factory else None
    advance = ctx.__enter__() if ctx else None
    written = 0
    try:
        batch: list[Any] = []
        for x in inputs:
            batch.append(x)
            if len(batch) == batch_size:
                written += _write(generator, batch, sink, advance, overrides)
                batch = []
        if batch:
            written += _write(generator, batch, sink, advance, overrides)
    finally:
        if ctx:
            ctx.__exit__(None, None, None)
        if output:
            sink.flush()
            os.fsync(sink.fileno())
            sink.close()
    return written


def _write(generator: Generator, batch: list[Any], sink, advance, overrides: dict) -> int:
    for x, text in zip(batch, generator.generate(batch, len(batch), **overrides)):
        sink.write(json.dumps({"input": x, "generated": text}, ensure_ascii=False) + "\n")
    sink.flush()  # a kill loses at most the batch in flight
    if advance:
        advance(len(batch))
    return len(batch)
