"""`graftkit predict --input/--output` continues an output only when its resume record matches the run and
the input; it reads the run's encoding (BOM dropped) and names malformed lines (or skips them)."""
from __future__ import annotations

import json

import pytest

from deploy_helpers import classifier_run, ner_run
from graftkit.errors import DataError, GraftkitError
from graftkit.inference.predict_file import predict_file, sidecar_path
from graftkit.inference.predictor import Predictor


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.getbasetemp() / "deploy"
    return Predictor(classifier_run(base, tiny_model_dir)), Predictor(ner_run(base, tiny_model_dir))


def _jsonl(path, texts, encoding="utf-8", bom=False):
    data = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding))
    return path


def _interrupted(predictor, src, out, n):
    """Predict the first ``n`` rows as an interrupted job would have (output + its resume record)."""
    head = src.with_name("head" + src.suffix)
    head.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[:n]))
    predict_file(predictor, head, out, batch_size=2)
    record = json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    record["input"] = str(src.resolve())
    sidecar_path(out).write_text(json.dumps(record), encoding="utf-8")


def test_resume_only_with_a_matching_record(runs, tmp_path):
    clf, ner = runs
    texts = [f"text number {i} was {'great' if i % 2 else 'awful'}" for i in range(10)]
    src, out = _jsonl(tmp_path / "in.jsonl", texts), tmp_path / "out.jsonl"
    _interrupted(clf, src, out, 4)
    assert predict_file(clf, src, out, batch_size=3) == 6  # continues after the 4 recorded rows
    assert [json.loads(line)["input"] for line in out.read_text(encoding="utf-8").splitlines()] == texts

    other = _jsonl(tmp_path / "other.jsonl", ["different"] + texts[1:])
    _interrupted(clf, other, tmp_path / "o2.jsonl", 4)
    sidecar = json.loads(sidecar_path(tmp_path / "o2.jsonl").read_text(encoding="utf-8"))
    other.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")  # same path, new content
    with pytest.raises(GraftkitError, match="different input.*--overwrite"):
        predict_file(clf, other, tmp_path / "o2.jsonl")
    assert sidecar["rows"] == 4
    with pytest.raises(GraftkitError, match="another run or model.*--overwrite"):
        predict_file(ner, src, out)  # the NER run may not append to the classifier's predictions
    stray = tmp_path / "stray.jsonl"
    stray.write_text('{"input": "x"}\n', encoding="utf-8")
    with pytest.raises(GraftkitError, match="no resume record.*--overwrite"):
        predict_file(clf, src, stray)
    assert predict_file(clf, src, stray, overwrite=True) == 10


def test_run_encoding_bom_and_malformed_lines(runs, tmp_path):
    clf, _ = runs
    src = _jsonl(tmp_path / "bom.jsonl", ["café au lait", "naïve"], bom=True)
    out = tmp_path / "bom-out.jsonl"
    assert predict_file(clf, src, out) == 2
    assert [json.loads(line)["input"] for line in out.read_text(encoding="utf-8").splitlines()] == \
        ["café au lait", "naïve"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "torn\n{"text": 3}\n{"text": "also fine"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2.*malformed JSON line.*--skip-invalid"):
        predict_file(clf, bad, tmp_path / "bad-out.jsonl")
    said = []
    n = predict_file(clf, bad, tmp_path / "skip-out.jsonl", skip_invalid=True, log=said.append, overwrite=True)
    assert n == 2 and said == [f"skipped 2 invalid lines of {bad} (first: line 2)"]


def test_run_encoding_is_used(runs, tmp_path):
    clf, _ = runs
    clf.cfg.data.encoding = "latin-1"  # as if the run had been trained on latin-1 files
    try:
        src = _jsonl(tmp_path / "latin.jsonl", ["crème brûlée"], encoding="latin-1")
        out = tmp_path / "latin-out.jsonl"
        assert predict_file(clf, src, out) == 1
        assert json.loads(out.read_text(encoding="utf-8"))["input"] == "crème brûlée"
    finally:
        clf.cfg.data.encoding = "utf-8"
