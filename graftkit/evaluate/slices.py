"""Metrics per value of a data column (``eval.slices``), so a model that is worse for one group shows it.

The column is read back from each example's own file and line (examples keep only their text and
label), so any column of the data can be a slice: source, topic, language, customer segment.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from graftkit.config import DataConfig
from graftkit.data.dataset import Example
from graftkit.data.readers import read_rows
from graftkit.errors import DataError

#: at most this many values per column are reported (the most frequent); the rest count as "(other)"
MAX_VALUES = 50


def column_values(examples: Sequence[Example], column: str, data_cfg: DataConfig) -> list[str]:
    """The value of ``column`` for each example, from the row its file and line point at."""
    by_file: dict[str, dict[int, Any]] = {}
    out = []
    for e in examples:
        if e.path not in by_file:
            rows = read_rows(e.path, data_cfg.format, data_cfg.encoding)
            if rows and column not in rows[0].values:
                raise DataError(e.path, f"eval.slices: column '{column}' is not in this file (columns: "
                                f"{', '.join(map(str, rows[0].values))})", field=column)
            by_file[e.path] = {r.line: r.values.get(column) for r in rows}
        value = by_file[e.path].get(e.line)
        out.append("(missing)" if value is None or value != value else str(value))
    return out


def slice_metrics(task, examples: Sequence[Example], predictions: Sequence[dict], columns: Sequence[str],
                  data_cfg: DataConfig) -> dict[str, dict[str, dict]]:
    """``{column: {value: {n, metric: value, ...}}}`` with the task's own report per slice."""
    out: dict[str, dict[str, dict]] = {}
    for column in columns:
        values = column_values(examples, column, data_cfg)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(values):
            groups[v].append(i)
        ranked = sorted(groups, key=lambda v: -len(groups[v]))
        if len(ranked) > MAX_VALUES:
            rest = [i for v in ranked[MAX_VALUES:] for i in groups.pop(v)]
            groups["(other)"] = rest
        out[column] = {}
        for value, idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            rep = task.report([examples[i] for i in idx], [predictions[i] for i in idx], None, plots=False)
            out[column][value] = {"n": len(idx)} | {k: v for k, v in rep.items()
                                                    if isinstance(v, float) and k != "predict_seconds"}
    return out
