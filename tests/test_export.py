"""ONNX export, int8 quantization, parity gate and pruning on a tiny trained classifier."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deploy_helpers import classifier_run, ner_run
from graftkit.export import ExportError, export_run
from graftkit.inference.predictor import Predictor


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir):
    """A tiny classifier, trained once per session."""
    return classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)


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
    feats, _ = torch_p.features(texts)
    np.testing.assert_allclose(onnx_p.backend(feats), torch_p.backend(feats), atol=1e-4)
    np.testing.assert_allclose(int8_p.backend(feats), torch_p.backend(feats), atol=0.25)
    assert [p.label for p in onnx_p.predict(texts)] == [p.label for p in torch_p.predict(texts)]


def test_predict_and_evaluate_choose_the_int8_graph(trained_run, tmp_path):
    from typer.testing import CliRunner

    from graftkit.cli import app

    if not (trained_run / "onnx" / "model.int8.onnx").is_file():
        export_run(trained_run, quantize="int8", log=lambda m: None)
    runner = CliRunner()
    int8 = runner.invoke(app, ["predict", str(trained_run), "i loved it", "--backend", "onnx", "--precision", "int8"])
    assert int8.exit_code == 0, int8.output
    expected = Predictor(trained_run, "onnx", precision="int8").predict(["i loved it"])[0]
    assert json.loads(int8.stdout.splitlines()[-1])["scores"] == pytest.approx(expected.scores, abs=1e-6)
    refused = runner.invoke(app, ["predict", str(trained_run), "i loved it", "--precision", "int8"])
    assert refused.exit_code != 0 and "needs --backend onnx" in refused.output
    data = tmp_path / "eval.csv"
    data.write_text("text,label\ni loved it,pos\nawful and dull,neg\n", encoding="utf-8")
    ev = runner.invoke(app, ["evaluate", str(trained_run), "--data", str(data), "--backend", "onnx",
                             "--precision", "int8", "--out", str(tmp_path / "ev")])
    assert ev.exit_code == 0, ev.output


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


def test_export_parity_ner(tmp_path_factory, tiny_model_dir):
    run = ner_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    report = export_run(run, quantize="int8", log=lambda m: None)  # the default int8 gate: F1 within 0.01
    b = report["backends"]
    assert report["metric"] == "f1" and b["onnx_fp32"]["logits_max_abs_diff"] <= 1e-3
    assert b["onnx_fp32"]["metrics"]["f1"] == b["torch"]["metrics"]["f1"]
    assert report["int8_metric_drop"] <= 0.01
    text = "Peter visited Siemens in Munich"
    ents = lambda p: [(e.start, e.end, e.label) for e in p.entities]  # noqa: E731
    torch_ents = ents(Predictor(run).predict([text])[0])
    assert torch_ents and ents(Predictor(run, "onnx").predict([text])[0]) == torch_ents


def test_prune_ffn_with_recovery(trained_run, tmp_path):
    from transformers import AutoConfig

    from graftkit.export.prune import prune_run

    out = tmp_path / "pruned"
    report = prune_run(trained_run, out, amount=0.5, recovery_steps=2, log=lambda m: None)
    assert report["ffn_width"] == {"before": 64, "after": 32}
    assert AutoConfig.from_pretrained(out).intermediate_size == 32
    assert report["after"]["parameters"] < report["before"]["parameters"]
    assert report["after"]["weights_mb"] < report["before"]["weights_mb"]
    assert set(report["before"]["metrics"]) == {"macro_f1", "accuracy"}
    assert (out / "COMPLETE").is_file() and (out.with_name("pruned-init") / "model.safetensors").is_file()
    assert json.loads((out / "compression.json").read_text())["recovery_steps"] == 2
    assert Predictor(out).predict(["i loved it"])[0].label in {"pos", "neg"}


def test_export_reads_only_the_run_folder(tmp_path, tiny_model_dir):
    """Export after the training data is gone: parity runs on the test split stored in the run folder."""
    import shutil

    from deploy_helpers import ner_run as make_ner_run
    from graftkit.inference.predictor import load_run_config
    from graftkit.modeling.run_folder import RunFolder

    for make, metric in ((classifier_run, "macro_f1"), (make_ner_run, "f1")):
        run = make(tmp_path / make.__name__, tiny_model_dir)
        stored = RunFolder(run).read_test_split()
        assert stored and all(e.path for e in stored)
        data = load_run_config(RunFolder(run)).data
        for f in {data.train, data.test, data.validation} - {None}:
            Path(f).unlink()
        shutil.rmtree(run / "onnx", ignore_errors=True)
        report = export_run(run, log=lambda m: None)
        b = report["backends"]
        assert report["passed"] and report["test_examples"] == len(stored)
        assert b["onnx_fp32"]["metrics"][metric] == b["torch"]["metrics"][metric]
