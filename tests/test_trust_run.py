"""Trust features over whole runs: slices, the card's metadata and sections, wandb offline, and the CLI."""
from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard
from typer.testing import CliRunner

from conftest import run_config, write_csv
from graftkit.cli.main import app
from graftkit.errors import DataError
from graftkit.train.trainer import train
from test_explain import keyword_rows


def _rows_with_source(n=120):
    """keyword rows plus a 'source' column; rows from 'forum' have their keyword removed (the model fails there)."""
    rows = []
    for i, (text, label) in enumerate(keyword_rows(n)):
        source = "forum" if i % 4 == 0 else "email"
        if source == "forum" and label != "neu":
            text = text.replace("excellent", "").replace("awful", "")
        rows.append([text, label, source])
    return rows


@pytest.fixture(scope="module")
def sliced_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("slices")
    data = write_csv(tmp / "d.csv", _rows_with_source(), header=("text", "label", "source"))
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 15, "learning_rate": 3e-3, "batch_size": 16},
                     eval={"slices": ["source"], "robustness_rows": 30})
    return train(cfg, log=lambda m: None)


def test_slices_show_the_weaker_group(sliced_run):
    metrics = json.loads(sliced_run.metrics.read_text())
    slices = metrics["test"]["slices"]["source"]
    assert set(slices) == {"forum", "email"}
    assert slices["forum"]["n"] + slices["email"]["n"] == metrics["test"]["n"]
    assert slices["forum"]["accuracy"] < slices["email"]["accuracy"]
    assert "### source" in sliced_run.card.read_text()


def test_card_is_a_hub_model_card_with_trust_sections(sliced_run):
    card = ModelCard.load(sliced_run.card)
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert "graftkit" in data["tags"] and "accuracy" in data["metrics"]
    results = data["model-index"][0]["results"]
    test = json.loads(sliced_run.metrics.read_text())["test"]
    assert any(m["type"] == "accuracy" and m["value"] == pytest.approx(test["accuracy"])
               for r in results for m in r["metrics"])
    for section in ("## Calibration", "## Robustness", "## Slices", "## Data quality"):
        assert section in card.text, section
    rob = json.loads((sliced_run.path / "robustness.json").read_text())
    assert rob["rows"] == min(30, test["n"]) and "typo_swap" in rob["perturbations"]


def test_missing_slice_column_names_column_and_file(tmp_path, tiny_model_dir):
    data = write_csv(tmp_path / "d.csv", keyword_rows(30))
    cfg = run_config(tmp_path, tiny_model_dir, data, eval={"slices": ["segment"], "robustness_rows": 0})
    with pytest.raises(DataError, match=r"d\.csv.*column 'segment' is not in this file"):
        train(cfg, log=lambda m: None)


def test_wandb_offline(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    data = write_csv(tmp_path / "d.csv", keyword_rows(30))
    cfg = run_config(tmp_path, tiny_model_dir, data, train={"report_to": ["wandb"]}, eval={"robustness_rows": 0})
    run = train(cfg, log=lambda m: None)
    assert run.is_complete
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))  # the run's log, ready for `wandb sync`


def _config_file(tmp_path, model_dir, train_file, test_file=None):
    tree = {"name": "q", "output_dir": str(tmp_path / "runs"), "model": {"name_or_path": model_dir},
            "data": {"train": str(train_file), "max_length": 32, **({"test": str(test_file)} if test_file else {})},
            "train": {"epochs": 1, "report_to": []}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_inspect_command_reports_leakage(tmp_path, tiny_model_dir):
    rows = keyword_rows(40)
    train_file = write_csv(tmp_path / "train.csv", rows)
    test_file = write_csv(tmp_path / "test.csv", rows[:3] + [["something new", "neu"]])
    res = CliRunner().invoke(app, ["inspect", str(_config_file(tmp_path, tiny_model_dir, train_file, test_file)),
                                   "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "leakage train/test: 3 rows" in res.output.replace("\n", " ")
    rep = json.loads((tmp_path / "rep" / "quality.json").read_text())
    assert rep["duplicates"]["leakage"]["train/test"]["rows"] == 3


def test_robustness_and_explain_commands(sliced_run, tmp_path):
    data = write_csv(tmp_path / "eval.csv", [r[:2] for r in _rows_with_source(30)])
    res = CliRunner().invoke(app, ["robustness", str(sliced_run.path), "--data", str(data), "-p", "typo_drop",
                                   "-p", "case", "--out", str(tmp_path / "rob.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "rob.json").read_text())
    assert set(rep["perturbations"]) == {"typo_drop", "case"} and rep["rows"] == 30
    res = CliRunner().invoke(app, ["explain", str(sliced_run.path), "we saw the excellent cat",
                                   "--html", str(tmp_path / "e.html")])
    assert res.exit_code == 0, res.output
    assert "excellent" in (tmp_path / "e.html").read_text()
