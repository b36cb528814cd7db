"""A tiny sentiment run and small demo streams for the monitor tests (trained once per session, cached on disk)."""
from __future__ import annotations

from pathlib import Path

from conftest import run_config, write_csv

NEGATIVE = ["Operating profit fell sharply and the company warned of losses .",
            "Net sales decreased and the firm cut hundreds of jobs .",
            "The company reported a pre-tax loss and shares slumped .",
            "Quarterly earnings dropped and the outlook was lowered ."]
NEUTRAL = ["The annual general meeting will be held in Helsinki .",
           "The company operates in Finland , Sweden and Norway .",
           "The board appointed a new chief financial officer .",
           "The plant produces packaging materials for retailers ."]
POSITIVE = ["Operating profit rose and the order backlog grew strongly .",
            "Net sales increased and the company raised its guidance ."]


def sentences_file(path: Path) -> Path:
    """The pool in Financial PhraseBank's ``sentence@label`` format."""
    lines = [f"{s}@negative" for s in NEGATIVE] + [f"{s}@neutral" for s in NEUTRAL] + \
            [f"{s}@positive" for s in POSITIVE]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sentiment_run(base: Path, model_dir: str) -> Path:
    """A tiny classifier overfit on the pool (negative / neutral / positive)."""
    from graftkit.train.trainer import train

    tmp = base / "sentiment"
    if (tmp / "runs" / "t" / "COMPLETE").is_file():
        return tmp / "runs" / "t"
    rows = [[s, "negative"] for s in NEGATIVE] + [[s, "neutral"] for s in NEUTRAL] + \
           [[s, "positive"] for s in POSITIVE]
    data = write_csv(tmp / "train.csv", rows * 6)
    cfg = run_config(tmp, model_dir, data, train={"epochs": 12, "learning_rate": 3e-3},
                     data={"test": str(write_csv(tmp / "test.csv", rows)), "validation": str(data)})
    return train(cfg, log=lambda m: None).path


def monitor_tree(run: Path, store: str, **extra) -> dict:
    """A monitor config tree: a 30-minute negative-share rule against a 12-hour baseline."""
    tree = {"sentiment_run": str(run), "store": store, "batch_size": 16,
            "detection": {"step_s": 300, "cooldown_s": 3600, "resolve_after": 2,
                          "rules": [{"name": "neg-share-30m", "window_s": 1800, "baseline_s": 43200,
                                     "threshold": 3.0, "min_count": 15, "min_baseline_count": 100,
                                     "floor": 0.1}]}}
    tree.update(extra)
    return tree
