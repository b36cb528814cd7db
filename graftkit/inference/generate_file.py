"""Batch generation over a file, through ``predict_file``'s streamed, resumable path (progress, resume
record, malformed-line errors): a generative run's prompt column is the input and each output line is
``{"input": ..., "generated": ...}``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from graftkit.inference.generator import Generator
from graftkit.inference.predict_file import predict_file
from graftkit.tasks.generation.rows import CHAT


def input_column(generator: Generator) -> str:
    """The column a run's inputs are read from: its prompt column, or the messages column of chat runs."""
    cfg = generator.cfg.task
    return cfg.messages_column if generator.task.row_format == CHAT else cfg.prompt_column


@dataclass
class _FileView:
    """What ``predict_file`` reads of a predictor, for a Generator with fixed decoding overrides."""

    generator: Generator
    overrides: dict

    def __post_init__(self):
        g = self.generator
        self.run = g.run
        self.cfg = g.cfg.model_copy(update={"data": g.cfg.data.model_copy(
            update={"text_column": input_column(g), "text_pair_column": None})})
        # part of the resume fingerprint: a restart with other decoding settings is refused
        self.backend_name = "torch " + json.dumps(self.overrides, sort_keys=True)

    def predict_batch(self, inputs: list[Any]) -> list[dict]:
        return [{"generated": t} for t in self.generator.generate(inputs, max(len(inputs), 1), **self.overrides)]


def generate_file(generator: Generator, input_path: Path, output: Path | None, batch_size: int = 16,
                  progress_factory=None, overwrite: bool = False, log: Callable[[str], None] | None = None,
                  **overrides: Any) -> int:
    """Generate for every input of ``input_path`` into JSON Lines at ``output`` (stdout when None).

    An interrupted ``output`` is continued (see ``predict_file``); ``overrides`` are decoding settings,
    checked against the run's limits before anything is read. Returns the number of lines written now.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    generator.config_for(**overrides)
    return predict_file(_FileView(generator, overrides), Path(input_path), output, batch_size,
                        progress_factory=progress_factory, overwrite=overwrite, log=log)
