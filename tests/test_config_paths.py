"""One rule for relative paths: written in a config file (run, assistant or monitor), relative to that file's
folder; given on the command line (--set), relative to the current folder."""
from __future__ import annotations

from pathlib import Path

import yaml
from conftest import REPO

from graftkit.apps.assistant.config import load_assistant_config
from graftkit.apps.monitor.config import load_monitor_config
from graftkit.tasks.run_config import load_config


def _write(path: Path, tree: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return path


def test_run_config_paths_are_relative_to_the_file_wherever_it_is_loaded_from(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\na,x\n", encoding="utf-8")
    (tmp_path / "base-model").mkdir()
    cfg_path = _write(tmp_path / "project" / "configs" / "run.yaml", {
        "output_dir": "../runs",
        "data": {"train": "../../data/train.csv", "test": "../../data/test.csv"},
        "model": {"name_or_path": "../../base-model"},
        "train": {"distill": {"teacher": "../runs/teacher", "unlabelled": "more.txt"}},
        "pretrain": {"texts": ["a.txt", "/abs/b.txt"]}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(cfg_path)
    here = cfg_path.parent
    assert cfg.output_dir == str((here / "../runs").resolve())
    assert cfg.data.train == str(tmp_path / "data" / "train.csv")
    assert cfg.data.test == str(tmp_path / "data" / "test.csv")  # not there yet: still the file's folder
    assert cfg.model.name_or_path == str(tmp_path / "base-model")
    assert cfg.train.distill.teacher == str((here / "../runs/teacher").resolve())
    assert cfg.train.distill.unlabelled == str(here / "more.txt")
    assert cfg.pretrain.texts == [str(here / "a.txt"), "/abs/b.txt"]


def test_a_path_given_on_the_command_line_is_relative_to_the_current_folder(tmp_path, monkeypatch):
    cfg_path = _write(tmp_path / "configs" / "run.yaml", {"data": {"train": "train.csv"}})
    monkeypatch.chdir(tmp_path)
    cfg = load_config(cfg_path, ["data.train=mine/train.csv", "output_dir=out"])
    assert cfg.data.train == str(tmp_path / "mine" / "train.csv")
    assert cfg.output_dir == str(tmp_path / "out")


def test_names_that_are_not_paths_stay_names(tmp_path):
    cfg_path = _write(tmp_path / "run.yaml", {"data": {"train": "t.csv"}, "model": {
        "name_or_path": "org/some-model", "extend_vocab": {"source": "auto"}}})
    cfg = load_config(cfg_path)
    assert cfg.model.name_or_path == "org/some-model" and cfg.model.extend_vocab.source == "auto"
    (tmp_path / "tokens.txt").write_text("x\n", encoding="utf-8")
    cfg = load_config(cfg_path, ["model.name_or_path=bundled:minilm"])
    assert cfg.model.name_or_path == "bundled:minilm"
    cfg_path = _write(tmp_path / "run.yaml", {"data": {"train": "t.csv"}, "model": {"extend_vocab": "tokens.txt"}})
    assert load_config(cfg_path).model.extend_vocab.source == str(tmp_path / "tokens.txt")


def test_application_configs_follow_the_same_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = load_assistant_config(_write(tmp_path / "apps" / "assistant.yaml", {
        "intent_run": "../runs/intent", "retrieval_run": "faq", "generation": {"run": "/abs/gen"},
        "store": "sqlite:///../a.db"}))
    assert a.intent_run == str(tmp_path / "runs" / "intent") and a.retrieval_run == str(tmp_path / "apps" / "faq")
    assert a.generation.run == "/abs/gen" and a.store == f"sqlite:///{tmp_path / 'a.db'}"
    m = load_monitor_config(_write(tmp_path / "apps" / "monitor.yaml", {
        "sentiment_run": "../runs/s", "topics": {"source": "ner", "run": "ner"}, "plots_dir": "plots",
        "store": "sqlite:///m.db"}))
    assert m.sentiment_run == str(tmp_path / "runs" / "s") and m.topics.run == str(tmp_path / "apps" / "ner")
    assert m.plots_dir == str(tmp_path / "apps" / "plots") and m.store == f"sqlite:///{tmp_path / 'apps' / 'm.db'}"


def test_shipped_configs_point_inside_the_repository_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in sorted((REPO / "configs").glob("*.yaml")):
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "applications" in tree or "intent_run" in tree or "sentiment_run" in tree:
            continue  # Ray's own format; the applications' configs are checked above
        cfg = load_config(path)
        assert cfg.output_dir == str(REPO / "runs"), path.name
        train = Path(cfg.data.train)
        if "examples" in train.parts:
            assert train.is_file(), (path.name, train)
        else:
            assert train.is_relative_to(REPO.parent), (path.name, train)
