"""Model outputs (standardised) → target values on the original scale."""
from __future__ import annotations

import numpy as np

from graftkit.tasks.predictions import ValuePrediction


def unscale(outputs: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    return outputs.reshape(len(outputs), -1) * np.array(std) + np.array(mean)


def decode(outputs: np.ndarray, columns: list[str], mean: list[float], std: list[float]) -> list[ValuePrediction]:
    """One prediction per input: ``value`` (first target) and ``values`` (every target by column name)."""
    values = unscale(outputs, mean, std)
    return [ValuePrediction(float(v[0]), {c: float(x) for c, x in zip(columns, v)}) for v in values]
