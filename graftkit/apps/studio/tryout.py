"""Try a run: a sentence in, its prediction out (label and confidence, and the out-of-scope flag of a run
with a detector), or a whole file in and JSON Lines out (the run's ``predict_file``, as ``graftkit predict --input`` writes it), through the one
function that opens any run (graftkit/inference/runs.py)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from graftkit.errors import GraftkitError
from graftkit.inference.runs import open_run

KEEP_LOADED = 2
MAX_TEXT = 10_000


class LoadedRuns:
    """What ``load(run_dir)`` builds for the last few runs asked for, built once each (a run retrained in place,
    with a newer COMPLETE, is built again). Not locked: callers hold their own lock around use."""

    def __init__(self, load: Callable[[Path], Any], keep: int = KEEP_LOADED):
        self._load, self._keep = load, keep
        self._loaded: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, run_dir: Path) -> Any:
        stamp = (run_dir / "COMPLETE").stat().st_mtime if (run_dir / "COMPLETE").is_file() else None
        key = (run_dir, stamp)
        if key not in self._loaded:
            self._loaded[key] = self._load(run_dir)
            while len(self._loaded) > self._keep:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(key)
        return self._loaded[key]


class Tryout:
    """The inference objects of the last few runs tried, loaded once each."""

    def __init__(self):
        self._runs = LoadedRuns(open_run)
        self._lock = threading.Lock()

    def predict(self, run_dir: Path, text: str) -> dict[str, Any]:
        """The prediction for ``text`` as JSON (the fields ``graftkit predict`` prints).

        Raises:
            GraftkitError: empty or too long text; UnsupportedError / RunFolderError from ``open_run``.
        """
        if not text.strip():
            raise GraftkitError("type some text to predict on")
        if len(text) > MAX_TEXT:
            raise GraftkitError(f"the text has {len(text)} characters; at most {MAX_TEXT} are accepted here")
        with self._lock:
            prediction = self._runs.get(run_dir).predict([text])[0]
        return {"input": text, **prediction.to_dict()}

    def predict_file(self, run_dir: Path, input_path: Path, output: Path) -> int:
        """Predict every row of ``input_path`` into JSON Lines at ``output`` (replaced); returns the row count.

        Raises:
            DataError: a malformed row, naming file and line (``graftkit predict``'s checks).
        """
        with self._lock:
            return self._runs.get(run_dir).predict_file(input_path, output, overwrite=True)
