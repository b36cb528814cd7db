"""What a person sees from `graftkit train`: graftkit's stage lines and summary, not the libraries' bars."""
from __future__ import annotations

import yaml
from typer.testing import CliRunner

from conftest import write_csv
from graftkit.cli import app

ROWS = [["the movie was wonderful", "pos"], ["a dull and boring film", "neg"], ["great acting", "pos"],
        ["terrible plot", "neg"]] * 6


def _config(tmp_path, model_dir) -> str:
    data = write_csv(tmp_path / "train.csv", ROWS)
    cfg = {"name": "out", "output_dir": str(tmp_path / "runs"), "data": {"train": str(data), "max_length": 16},
           "model": {"name_or_path": model_dir},
           "train": {"epochs": 1, "batch_size": 4, "report_to": [], "logging_steps": 1, "early_stopping": None},
           "eval": {"plots": False}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _run(args):
    result = CliRunner().invoke(app, args)
    return result, result.stdout + result.stderr


def test_train_output_has_no_library_bars(tmp_path, tiny_model_dir):
    result, text = _run(["train", _config(tmp_path, tiny_model_dir)])
    assert result.exit_code == 0, text
    for noise in ("Loading weights", "Writing model shards", "it/s]", "{'loss'"):
        assert noise not in text
    assert "\r" not in text  # not a terminal: plain lines, no redraws
    assert "training: " in text and "100%" in text and "evaluating test" in text
    assert "validation" in text and "macro_f1" in text and "done:" in text  # the summary table


def test_verbose_brings_the_library_output_back(tmp_path, tiny_model_dir):
    result, text = _run(["--verbose", "train", _config(tmp_path, tiny_model_dir)])
    assert result.exit_code == 0, text
    assert "Loading weights" in text or "Writing model shards" in text
