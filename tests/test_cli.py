"""The CLI through typer's test runner: train → evaluate → predict → info, and readable errors."""
from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from conftest import write_csv
from graftkit.cli import app

ROWS = [["shares jumped after strong results", "positive"], ["profit fell sharply", "negative"],
        ["the meeting is on monday", "neutral"]] * 10


@pytest.fixture
def cfg_file(tmp_path, tiny_model_dir):
    train = write_csv(tmp_path / "train.csv", ROWS)
    tree = {"name": "cli", "output_dir": str(tmp_path / "runs"),
            "data": {"train": str(train), "max_length": 32, "split": {"validation": 0.2, "test": 0.2}},
            "model": {"name_or_path": tiny_model_dir},
            "train": {"epochs": 8, "batch_size": 8, "learning_rate": 3e-3, "report_to": ["tensorboard"],
                      "early_stopping": None}}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(tree))
    return p


def test_cli_end_to_end(tmp_path, cfg_file):
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg_file), "--set", "train.epochs=25"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "cli"
    assert (run / "COMPLETE").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 25
    assert any((run / "logs").iterdir())  # TensorBoard events
    assert (run / "plots" / "training_curve.png").stat().st_size > 1000
    assert (run / "plots" / "confusion_matrix.png").stat().st_size > 1000

    # a second train without --resume/--overwrite refuses clearly
    res = runner.invoke(app, ["train", str(cfg_file)])
    assert res.exit_code == 2 and "already holds a finished run" in res.output

    test = write_csv(tmp_path / "test.csv", ROWS[:6])
    res = runner.invoke(app, ["evaluate", str(run), "--data", str(test)])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "per class" in res.output
    assert (run / "eval" / "test" / "predictions.jsonl").is_file()
    assert str(test) in json.loads((run / "metrics.json").read_text())["evaluations"]

    res = runner.invoke(app, ["predict", str(run), "profit fell sharply", "shares jumped after strong results"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [x["label"] for x in lines] == ["negative", "positive"]

    inp = tmp_path / "in.txt"
    inp.write_text("profit fell sharply\nthe meeting is on monday\n")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["predict", str(run), "--input", str(inp), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["label"] for x in out.read_text().splitlines()] == ["negative", "neutral"]

    res = runner.invoke(app, ["info", str(run)])
    assert res.exit_code == 0 and "classification" in res.output and "model.safetensors" in res.output


def test_cli_errors_are_readable(tmp_path, cfg_file):
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg_file), "--set", "train.epoch=1"])
    assert res.exit_code == 2 and "train.epoch" in res.output and "Traceback" not in res.output
    bad = write_csv(tmp_path / "bad.csv", [["x", "positive"], ["y", "positive", "extra"]])
    res = runner.invoke(app, ["train", str(cfg_file), "--set", f"data.train={bad}"])
    assert res.exit_code == 2 and "line 3" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "nope"), "x"])
    assert res.exit_code == 2 and "run folder not found" in res.output


def test_help_documents_options():
    res = CliRunner().invoke(app, ["train", "--help"])
    assert res.exit_code == 0
    for opt in ("--set", "--resume", "--overwrite"):
        assert opt in res.output
