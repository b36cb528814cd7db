"""Batch prediction at scale: `graftkit predict --input/--output` resumes after the process is killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from deploy_helpers import classifier_run
from graftkit.inference.predict_file import predict_file
from graftkit.inference.predictor import Predictor

SLOW_WORKER = """
import sys, time
from graftkit.inference.predict_file import predict_file
from graftkit.inference.predictor import Predictor
p = Predictor(sys.argv[1])
inner = p.predict_batch
p.predict_batch = lambda xs: (time.sleep(0.05), inner(xs))[1]  # slow enough to be killed mid-file
predict_file(p, sys.argv[2], sys.argv[3], batch_size=4)
"""


def test_predict_file_resumes_after_kill(tmp_path_factory, tiny_model_dir, tmp_path):
    run = classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    texts = [f"sentence number {i} was {'great' if i % 2 else 'awful'}" for i in range(400)]
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, str(run), str(src), str(out)], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        while not (out.is_file() and out.read_bytes().count(b"\n") >= 40):
            assert proc.poll() is None, "the worker ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads((tmp_path / "out.jsonl.resume.json").read_text(encoding="utf-8"))["rows"]
    # the record trails the written lines by at most one batch (it is written after their fsync): those are redone
    assert 0 < done < len(texts) and 0 <= out.read_bytes().count(b"\n") - done <= 4
    with open(out, "ab") as fh:  # a write torn by the kill
        fh.write(b'{"input": "sentence num')
    ticks = []

    class Bar:
        def __init__(self, total, desc):
            ticks.append(total)

        def __enter__(self):
            return lambda n=1: ticks.append(n)

        def __exit__(self, *exc):
            return False

    predictor = Predictor(run)
    written = predict_file(predictor, src, out, batch_size=16, progress_factory=Bar)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written == len(texts) - done and ticks[0] == len(texts) - done and sum(ticks[1:]) == written
    assert [r["input"] for r in rows] == texts
    # every row, from before and after the kill, is the run's own prediction of its input
    expected = predictor.predict(texts)
    assert [r["label"] for r in rows] == [e.label for e in expected]
    for r, e in zip(rows, expected):
        assert r["scores"] == pytest.approx(e.scores, abs=1e-5)
