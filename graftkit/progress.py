"""Terminal output of long work: one progress bar per stage, and the libraries' own output kept quiet.

On a terminal a stage is a rich progress bar (with fields such as the training loss); in a log file
(not a terminal) it is a plain line every 10% and one at the end, so the file stays readable: no
carriage-return redraws. Library functions take an ``advance(n, **fields)`` callback, so they
work the same with or without a bar.
"""
from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

from datasets.utils import logging as datasets_logging
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers.utils import logging as hf_logging

#: libraries whose loggers, progress bars and warnings graftkit's own lines replace (``--verbose`` restores them)
NOISY_LIBRARIES = ("transformers", "datasets", "huggingface_hub", "accelerate", "peft", "torch", "sentence_transformers",
                   "trl", "optimum", "onnxruntime", "onnxscript", "urllib3", "httpx", "jieba", "setfit", "small_text")

Advance = Callable[..., None]


def stderr_console() -> Console:
    return Console(stderr=True)


class _PlainBar:
    """A stage in a non-interactive log: a line at every 10% of the total, and one at the end."""

    def __init__(self, total: int | None, description: str, console: Console):
        self.total, self.description, self.console = total, description, console
        self.done, self.next_tenth, self.start = 0, 1, time.monotonic()
        self.fields: dict = {}

    def advance(self, n: int = 1, **fields) -> None:
        self.done += n
        self.fields.update(fields)
        if self.total and self.done * 10 >= self.next_tenth * self.total and self.done < self.total:
            self.next_tenth = self.done * 10 // self.total + 1
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        share = f"{self.done}/{self.total} ({100 * self.done // self.total}%)" if self.total else str(self.done)
        eta = ""
        if self.total and 0 < self.done < self.total:
            eta = f", eta {_clock(elapsed * (self.total - self.done) / self.done)}"
        extra = "".join(f", {k} {v}" for k, v in self.fields.items())
        self.console.print(f"{self.description}: {share}{extra}, {_clock(elapsed)} elapsed{eta}",
                           highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        self._line()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


@contextmanager
def progress_bar(total: int | None, description: str, console: Console | None = None) -> Iterator[Advance]:
    """``with progress_bar(n, "predicting") as advance: ... advance(k, loss="0.31")``; output goes to stderr.

    Keyword fields passed to ``advance`` are shown after the bar (e.g. the current loss).
    """
    console = console or stderr_console()
    if not console.is_terminal:
        bar = _PlainBar(total, description, console)
        try:
            yield bar.advance
        finally:
            bar.close()
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as prog:
        task = prog.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields) -> None:
            info = " ".join(f"{k} {v}" for k, v in fields.items())
            prog.update(task, advance=n, **({"info": info} if fields else {}))

        yield advance


@contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """While inside, the ML libraries print no per-file progress bars, info logs or repeated warnings;
    graftkit's own progress and result lines are the output. Everything is restored on exit.

    Meant for entry points (the CLI), never called at import time.
    """
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in NOISY_LIBRARIES]
    levels = [lg.level for lg in loggers]
    bars_were_on = hf_logging.is_progress_bar_enabled()
    datasets_bars = datasets_logging.is_progress_bar_enabled()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        hf_logging.disable_progress_bar()  # also huggingface_hub's bars
        datasets_logging.disable_progress_bar()
        with warnings.catch_warnings():
            for lib in NOISY_LIBRARIES:
                warnings.filterwarnings("ignore", module=rf"{lib}(\.|$)")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars_were_on:
            hf_logging.enable_progress_bar()
        if datasets_bars:
            datasets_logging.enable_progress_bar()
