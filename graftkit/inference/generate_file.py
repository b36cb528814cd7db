"""Batch generation over a file, through ``predict_file``'s streamed, resumable path (progress, resume
record, malformed-line errors): a generative run's prompt column is the input and each output line is
``{"input": ..., "generated": ...}``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from graftkit.inference.generator import Generator


def generate_file(generator: Generator, input_path: Path, output: Path | None, batch_size: int = 16,
                  progress_factory=None, overwrite: bool = False, log: Callable[[str], None] | None = None,
                  **overrides: Any) -> int:
    """Generate for every input of ``input_path`` into JSON Lines at ``output`` (stdout when None).

    An interrupted ``output`` is continued (see ``predict_file``); ``overrides`` are decoding settings,
    checked against the run's limits before anything is read (a restart with other settings is refused).
    Returns the number of lines written now.
    """
    return generator.with_overrides(**overrides).predict_file(input_path, output, batch_size,
                                                              progress_factory=progress_factory,
                                                              overwrite=overwrite, log=log)
