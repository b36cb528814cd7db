"""`graftkit inspect CONFIG`: the data-quality report of a config's splits (and, optionally, label errors)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from graftkit.data.quality import warnings
from graftkit.evaluate.evaluator import data_quality
from graftkit.io import write_json
from graftkit.modeling.load import resolve_model_path
from graftkit.tasks.run_config import RunConfig
from graftkit.train.trainer import prepare


def load_tokenizer(cfg: RunConfig):
    """The tokenizer of the config's base model (the model itself is not needed for the report)."""
    return AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path), revision=cfg.model.revision)


def inspect_config(cfg: RunConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Read the config's data as training would, and write ``quality.json`` into ``out_dir``.

    Returns the report with its ``warnings`` (short, one line each).
    """
    task, splits = prepare(cfg)
    report = data_quality(splits, load_tokenizer(cfg), cfg.data.max_length, task)
    report["warnings"] = warnings(report)
    report["notes"] = splits.notes
    if out_dir is not None:
        write_json(Path(out_dir) / "quality.json", report)
    return report

