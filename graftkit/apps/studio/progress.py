"""Live progress of a training job, read from its log: the lines ``graftkit train`` writes to a file.

In a log (not a terminal) the training bar is a plain line at every 10% of the steps and at the end
(graftkit/progress.py), ``training: 30/100 (30%), loss 0.4123, 0:12 elapsed, eta 0:28``, and each evaluation
is a line ``epoch 1.00 validation: loss=0.69, accuracy=0.50``. The last of each is the job's progress.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_BAR = re.compile(r"^training: (?P<step>\d+)/(?P<total>\d+) \(\d+%\)(?:, loss (?P<loss>[-\d.eE+naif]+))?"
                  r".*?, (?P<elapsed>[\d:]+) elapsed(?:, eta (?P<eta>[\d:]+))?\s*$")
_EVAL = re.compile(r"^epoch (?P<epoch>[\d.]+) validation: (?P<metrics>.*)$")
_ERROR = re.compile(r"^error: (?P<message>.*)$")


def parse_line(line: str, state: dict[str, Any]) -> None:
    """Update ``state`` (step, total, loss, elapsed, eta, validation, error) from one log line."""
    line = line.rstrip()
    if m := _BAR.match(line):
        state.update(step=int(m["step"]), total=int(m["total"]), elapsed=m["elapsed"], eta=m["eta"])
        if m["loss"]:
            state["loss"] = float(m["loss"])
    elif m := _EVAL.match(line):
        pairs = (p.split("=", 1) for p in m["metrics"].split(", ") if "=" in p)
        state["validation"] = {"epoch": float(m["epoch"]), **{k: float(v) for k, v in pairs}}
    elif m := _ERROR.match(line):
        state["error"] = m["message"]


def read_progress(log: Path) -> dict[str, Any]:
    """The progress a whole log shows so far (an empty dict before the first line)."""
    state: dict[str, Any] = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            parse_line(line, state)
    return state


def read_from(log: Path, offset: int) -> tuple[str, int]:
    """The complete lines of ``log`` after byte ``offset``, and the offset after them."""
    if not log.is_file():
        return "", offset
    with open(log, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1
    return chunk[:end].decode("utf-8", errors="replace"), offset + end
