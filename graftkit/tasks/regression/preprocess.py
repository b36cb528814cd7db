"""Numeric targets for regression: parsing with clear errors, and target standardisation."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError


def parse_targets(raw: Any, row: Row, columns: list[str]) -> tuple[float, ...]:
    """One float per target column; ``raw`` is a value (one column) or a column → value mapping.

    Raises:
        DataError: a target is empty, not a number, or not finite (names file, line and column).
    """
    values = raw if isinstance(raw, dict) else {columns[0]: raw}
    out = []
    for col in columns:
        v = values.get(col)
        text = "" if v is None else str(v).strip()
        if isinstance(v, bool):
            v = float(v)
        try:
            x = float(v) if isinstance(v, (int, float)) else float(text)
        except ValueError:
            raise DataError(row.path, f"regression target {text!r} is not a number", line=row.line,
                            field=col) from None
        if not math.isfinite(x):
            raise DataError(row.path, f"regression target {text or v!r} is empty or not finite", line=row.line,
                            field=col)
        out.append(x)
    return tuple(out)


def target_matrix(examples: Sequence[Example]) -> np.ndarray:
    """(n_examples, n_targets) float64 array of the parsed targets."""
    return np.array([e.label for e in examples], dtype=np.float64).reshape(len(examples), -1)


def fit_scaler(y: np.ndarray, standardize: bool) -> tuple[list[float], list[float]]:
    """Mean and std per target (0 and 1 when not standardising; std 1 for a constant target)."""
    if not standardize:
        return [0.0] * y.shape[1], [1.0] * y.shape[1]
    std = y.std(axis=0)
    return y.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()


def is_binary(y: np.ndarray) -> list[bool]:
    """Per target: are all values 0 or 1 with both present (then ROC-AUC is reported)."""
    return [set(np.unique(col).tolist()) == {0.0, 1.0} for col in y.T]
