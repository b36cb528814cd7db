"""A data file's first rows, its detected format and columns, for the new-run page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.data.readers import detect_format, read_rows
from graftkit.errors import GraftkitError

PREVIEW_ROWS = 20


def preview(path: Path, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """``format``, ``columns`` and the first ``rows`` rows; for a file no row reader reads (a task's own format,
    such as CoNLL), its first lines and the reason instead."""
    try:
        fmt = detect_format(path)
        read = read_rows(path, fmt)
    except GraftkitError as err:
        return {"format": None, "note": str(err), "columns": [], "rows": [], "total": None,
                "lines": _head(path, rows)}
    columns: list[str] = []
    for row in read[:rows]:
        columns += [c for c in row.values if c not in columns]
    shown = [{c: _cell(row.values.get(c)) for c in columns} for row in read[:rows]]
    return {"format": fmt, "columns": columns, "rows": shown, "total": len(read), "note": None, "lines": []}


def _cell(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _head(path: Path, rows: int) -> list[str]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for _, line in zip(range(rows), fh)]
