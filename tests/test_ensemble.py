"""Ensembles: two runs → one servable run folder that averages probabilities and evaluates."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_config, write_csv
from graftkit.train.ensemble import build_ensemble
from graftkit.errors import GraftkitError
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]]


def test_ensemble_of_two_runs(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    runs = []
    for seed, extra in ((1, {}), (2, {"peft": {"method": "lora", "r": 2}})):  # a full run and an adapter run
        cfg = run_config(tmp_path, tiny_model_dir, train_file, name=f"m{seed}", train={"seed": seed},
                         data={"test": str(train_file), "split": {"validation": 0.0, "test": 0.0}}, **extra)
        runs.append(train(cfg, log=lambda m: None).path)
    out = tmp_path / "runs" / "ens"
    res = build_ensemble(runs, out, log=lambda m: None)
    assert len(res["members"]) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert "macro_f1" in metrics["test"] and (out / "COMPLETE").is_file()

    texts = [r[0] for r in ROWS]
    members = [Predictor(r).predict(texts) for r in runs]
    ens = Predictor(out).predict(texts)  # served like any run
    for i, p in enumerate(ens):
        for lab in ("neg", "pos"):
            mean = np.mean([m[i].scores[lab] for m in members])
            assert p.scores[lab] == pytest.approx(mean, abs=1e-5)
    # its reported test accuracy is that of these averaged predictions on its test rows (ROWS * 4)
    assert res["test"]["accuracy"] == pytest.approx(np.mean([p.label == r[1] for p, r in zip(ens, ROWS)]))

    with pytest.raises(GraftkitError, match="already exists"):
        build_ensemble(runs, out)
    other_run = tmp_path / "other"
    shutil.copytree(runs[0], other_run)
    state = json.loads((other_run / "labels.json").read_text())
    (other_run / "labels.json").write_text(json.dumps({**state, "labels": ["pos", "neg"]}))
    with pytest.raises(GraftkitError, match="same labels"):
        build_ensemble([runs[0], other_run], tmp_path / "bad")
