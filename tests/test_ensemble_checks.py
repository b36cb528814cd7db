"""Ensembles refuse members trained on other data, splits or targets; they are evaluated on the test split
recorded in the run folders; the folder is replaced only by a complete new one; one writer at a time."""
from __future__ import annotations

import fcntl
import json
import shutil

import pytest
import yaml

from conftest import run_config, write_csv
from deploy_helpers import ROWS, classifier_run
from graftkit.errors import GraftkitError, RunFolderError
from graftkit.train import ensemble as ens
from graftkit.train.ensemble import build_ensemble
from graftkit.train.trainer import train


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    return classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)


def _copy(run, dst, legacy=False, **data_changes):
    """A copy of ``run`` with ``data_changes`` in its config; ``legacy``: without the data hashes recorded
    at training (a run folder from before they were), so the data settings are compared instead."""
    shutil.copytree(run, dst)
    if legacy:
        setup = json.loads((dst / "training_setup.json").read_text(encoding="utf-8"))
        del setup["data_digest"]
        (dst / "training_setup.json").write_text(json.dumps(setup), encoding="utf-8")
    cfg = yaml.safe_load((dst / "config.yaml").read_text(encoding="utf-8"))
    for key, value in data_changes.items():
        section = cfg["data"]
        *parents, leaf = key.split(".")
        for p in parents:
            section = section.setdefault(p, {})
        section[leaf] = value
    (dst / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return dst


@pytest.mark.parametrize("change, field, what", [
    ({"split.seed": 7}, "data.split", "data or splits"),
    ({"train": "/elsewhere/train.csv"}, "data.train", "data or splits"),
    ({"label_column": "sentiment"}, "data.label_column", "targets"),
])
def test_legacy_members_with_other_data_settings_are_refused(run, tmp_path, change, field, what):
    first = _copy(run, tmp_path / "first", legacy=True)
    other = _copy(run, tmp_path / "other", legacy=True, **change)
    with pytest.raises(GraftkitError, match=f"members differ in {field}.*same {what}"):
        build_ensemble([first, other], tmp_path / "ens", log=lambda m: None)
    assert not (tmp_path / "ens").exists()


def test_evaluated_on_the_recorded_split_and_replaced_only_when_complete(run, tmp_path, monkeypatch):
    twin = _copy(run, tmp_path / "twin")
    data = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["data"]
    moved = {}
    for key in ("train", "test"):  # the data files are gone: only the recorded split can be evaluated
        path = data[key]
        moved[path] = tmp_path / f"moved-{key}"
        shutil.move(path, moved[path])
    try:
        out = tmp_path / "ens"
        res = build_ensemble([run, twin], out, log=lambda m: None)
        assert res["test"]["accuracy"] == pytest.approx(
            yaml.safe_load((run / "metrics.json").read_text())["test"]["accuracy"])  # twins: members' own score
        assert (out / "COMPLETE").is_file()

        def broken(*a, **k):
            raise RuntimeError("evaluation died")
        monkeypatch.setattr(ens, "evaluate_examples", broken)
        with pytest.raises(RuntimeError, match="evaluation died"):
            build_ensemble([run, twin], out, overwrite=True, log=lambda m: None)
        assert (out / "COMPLETE").is_file() and (out / "metrics.json").is_file()  # the old result is intact
    finally:
        for path, where in moved.items():
            shutil.move(where, path)


def test_a_second_writer_gets_a_clear_error(run, tmp_path):
    twin = _copy(run, tmp_path / "twin")
    out = tmp_path / "ens"
    with open(tmp_path / ".ens.lock", "w") as lock:  # another process is writing the same folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RunFolderError, match="another process is writing"):
            build_ensemble([run, twin], out, log=lambda m: None)
    assert not out.exists()


def _member(tmp_path, model_dir, name, data):
    cfg = run_config(tmp_path, model_dir, data, name=name, train={"epochs": 1})
    return train(cfg, log=lambda m: None).path


def test_members_are_judged_by_their_data_not_its_path(tmp_path, tiny_model_dir):
    """The same rows at another path make a valid ensemble; other rows at the same path do not."""
    here, there = tmp_path / "here.csv", tmp_path / "elsewhere" / "train.csv"
    write_csv(here, ROWS * 4)
    write_csv(there, ROWS * 4)
    first = _member(tmp_path, tiny_model_dir, "first", here)
    moved = _member(tmp_path, tiny_model_dir, "moved", there)
    flipped = [[text, "neg" if label == "pos" else "pos"] if i == 0 else [text, label]
               for i, (text, label) in enumerate(ROWS * 4)]
    write_csv(here, flipped)  # one label changed, same file
    changed = _member(tmp_path, tiny_model_dir, "changed", here)

    res = build_ensemble([first, moved], tmp_path / "ens", log=lambda m: None)
    assert (tmp_path / "ens" / "COMPLETE").is_file() and "accuracy" in res["test"]
    with pytest.raises(GraftkitError, match="trained on different data: the (train|validation|test) split"):
        build_ensemble([first, changed], tmp_path / "ens2", log=lambda m: None)
    assert not (tmp_path / "ens2").exists()
