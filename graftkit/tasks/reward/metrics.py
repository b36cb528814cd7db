"""Reward metrics: pairwise accuracy (the chosen response scored above the rejected) and reward margins."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.io import write_jsonl


def pairwise(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Accuracy (ties count as wrong, as in trl), mean margin and mean rewards of paired scores."""
    margin = np.asarray(chosen, dtype=np.float64) - np.asarray(rejected, dtype=np.float64)
    return {"accuracy": float(np.mean(margin > 0)), "margin": float(np.mean(margin)),
            "reward_chosen": float(np.mean(chosen)), "reward_rejected": float(np.mean(rejected))}


def report(examples: Sequence[Example], predictions: Sequence, out_dir: Path | None) -> dict:
    """Pairwise metrics of scored preference pairs; ``wrong_pairs.jsonl`` (lowest margin first) into ``out_dir``."""
    chosen = np.array([p.reward for p in predictions])
    rejected = np.array([p.rejected_reward for p in predictions])
    result = {**pairwise(chosen, rejected), "n": len(examples)}
    if out_dir is not None:
        order = np.argsort(chosen - rejected, kind="stable")
        write_jsonl(Path(out_dir) / "wrong_pairs.jsonl", (
            {"file": examples[i].path, "line": examples[i].line, "prompt": examples[i].text,
             "chosen": examples[i].text_pair, "rejected": examples[i].extra["rejected"],
             "margin": round(float(chosen[i] - rejected[i]), 4)} for i in order if chosen[i] <= rejected[i]))
    return result
