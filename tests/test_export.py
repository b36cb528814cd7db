"""ONNX export, int8 quantization, parity gate and pruning on a tiny trained classifier."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_config, write_csv
from graftkit.export import ExportError, export_run
from graftkit.predictor import Predictor

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir):
    """A tiny classifier trained once per module (overfit so labels are stable)."""
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("export")
    data = write_csv(tmp / "train.csv", ROWS * 4)
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 10, "learning_rate": 3e-3},
                     data={"test": str(write_csv(tmp / "test.csv", ROWS))})
    return train(cfg, log=lambda m: None).path


def test_export_parity_fp32_and_int8(trained_run):
    report = export_run(trained_run, quantize="int8", log=lambda m: None)
    onnx_dir = trained_run / "onnx"
    assert (onnx_dir / "model.onnx").is_file() and (onnx_dir / "model.int8.onnx").is_file()
    saved = json.loads((onnx_dir / "parity.json").read_text())
    assert saved == json.loads(json.dumps(report)) and saved["passed"] is True
    b = saved["backends"]
    assert b["onnx_fp32"]["logits_max_abs_diff"] <= 1e-3
    assert set(b) == {"torch", "onnx_fp32", "onnx_int8"}
    assert b["onnx_fp32"]["metrics"]["macro_f1"] == b["torch"]["metrics"]["macro_f1"]
    assert saved["int8_metric_drop"] <= 0.01
    assert b["onnx_int8"]["size_mb"] < b["onnx_fp32"]["size_mb"]
    assert json.loads((trained_run / "metrics.json").read_text())["export"]["passed"] is True

    # dynamic axes: batch sizes and lengths the exporter never saw; predictions agree with torch
    texts = ["i loved it", "a dull, dull, boring and tedious film that never ends at all, really", "x"] * 3
    torch_p, onnx_p = Predictor(trained_run), Predictor(trained_run, "onnx")
    int8_p = Predictor(trained_run, "onnx", precision="int8")
    feats, _ = torch_p.task.encode(texts, torch_p.tokenizer, torch_p.max_length)
    np.testing.assert_allclose(onnx_p.backend(feats), torch_p.backend(feats), atol=1e-4)
    np.testing.assert_allclose(int8_p.backend(feats), torch_p.backend(feats), atol=0.25)
    assert [p["label"] for p in onnx_p.predict(texts)] == [p["label"] for p in torch_p.predict(texts)]


def test_export_refuses_outside_tolerance(trained_run, tmp_path):
    import shutil

    run = shutil.copytree(trained_run, tmp_path / "run")
    shutil.rmtree(run / "onnx", ignore_errors=True)
    with pytest.raises(ExportError, match="parity check failed.*tolerance"):
        export_run(run, logits_tolerance=0.0, log=lambda m: None)
    assert not (run / "onnx").exists() and not list(run.glob(".onnx-staging*"))


def test_onnx_backend_needs_export(trained_run, tmp_path):
    import shutil

    run = shutil.copytree(trained_run, tmp_path / "run2")
    shutil.rmtree(run / "onnx", ignore_errors=True)
    with pytest.raises(ExportError, match="graftkit export"):
        Predictor(run, "onnx")
