"""The selection file as the labelling page edits it: one answer at a time, saved atomically after each.

The file is the CSV ``graftkit label select`` wrote (the run's text columns, an empty label column, the model's
suggestion); the page fills its label column, so ``graftkit label import`` merges the same file afterwards and a
reload, or a restart of the page, shows every answer given so far.
"""
from __future__ import annotations

import csv
import threading
from pathlib import Path

from graftkit.config import DataConfig
from graftkit.errors import GraftkitError
from graftkit.io import write_csv


class Sheet:
    """The rows to answer, their answers, and the order answers were given in (for undo)."""

    def __init__(self, path: str | Path, labels: list[str], data: DataConfig):
        self.path, self.labels = Path(path), list(labels)
        self.text_column, self.pair_column = data.text_column, data.text_pair_column
        self.label_column = str(data.label_column)
        with self.path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            self.header = list(reader.fieldnames or [])
            self.rows = list(reader)
        for column in (self.text_column, self.label_column, "suggested"):
            if column not in self.header:
                raise GraftkitError(f"label page: {self.path} has no column '{column}' (write it with graftkit label "
                                    "select)")
        self._answered: list[int] = []  # indices in the order they were answered (this page's session)
        self._lock = threading.Lock()

    def view(self) -> dict:
        """Everything the page shows: the labels, each row with its suggestion and answer, and progress."""
        rows = [{"text": r[self.text_column], "pair": r.get(self.pair_column or "", "") or "",
                 "suggested": r.get("suggested", ""), "label": r[self.label_column]} for r in self.rows]
        return {"labels": self.labels, "rows": rows, "answered": sum(1 for r in rows if r["label"]),
                "total": len(rows), "can_undo": bool(self._answered)}

    def answer(self, index: int, label: str) -> dict:
        """Set row ``index``'s label and save the file."""
        if label not in self.labels:
            raise GraftkitError(f"label {label!r} is not one of the run's labels ({', '.join(self.labels)})")
        if not 0 <= index < len(self.rows):
            raise GraftkitError(f"row {index} does not exist (the sheet has {len(self.rows)} rows)")
        with self._lock:
            self.rows[index][self.label_column] = label
            self._answered = [i for i in self._answered if i != index] + [index]
            self._save()
        return self.view()

    def undo(self) -> tuple[int, dict]:
        """Clear the most recent answer and save; returns its row index and the view."""
        with self._lock:
            if not self._answered:
                raise GraftkitError("nothing to undo")
            index = self._answered.pop()
            self.rows[index][self.label_column] = ""
            self._save()
        return index, self.view()

    def _save(self) -> None:
        write_csv(self.path, self.header, [[r.get(c, "") for c in self.header] for r in self.rows])
