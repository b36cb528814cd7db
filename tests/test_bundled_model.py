"""A few checks on the real bundled MiniLM (slow-ish, still run by default)."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, run_config
from graftkit.tasks.run_config import load_config
from graftkit.modeling.load import resolve_model_path
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train


@pytest.mark.slow
def test_demo_config_trains_on_bundled_model(tmp_path):
    cfg = load_config(REPO / "configs" / "demo-sentiment.yaml",
                      [f"output_dir={tmp_path}", "train.epochs=2", "train.learning_rate=1.5e-4", "eval.plots=false", "train.report_to=[]"])
    assert cfg.model.name_or_path == "bundled:minilm"
    run = train(cfg, log=lambda m: None)
    metrics = json.loads(run.metrics.read_text())
    assert metrics["test"]["accuracy"] > 0.8  # 480 templated sentences; chance is 1/3
    pred = Predictor(run.path).predict(["Nordvik Bank's net profit fell 12% in Q2."])
    assert pred[0].label == "negative"


def test_bundled_alias_resolves_to_local_folder():
    from pathlib import Path

    path = Path(resolve_model_path("bundled:minilm"))
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    from graftkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown bundled model"):
        resolve_model_path("bundled:nope")
