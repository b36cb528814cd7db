"""Tiny trained runs shared by the export and serve tests (trained once per test session, cached on disk)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from conftest import run_config, write_csv

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]]

CONLL = """Angela B-PER
Merkel I-PER
visited O
Siemens B-ORG
in O
Munich B-LOC

Siemens B-ORG
hired O
Peter B-PER

Peter B-PER
flew O
to O
Munich B-LOC

Merkel B-PER
left O
Siemens B-ORG
"""


def classifier_run(base: Path, model_dir: str) -> Path:
    """A tiny overfit pos/neg classifier with an explicit 8-row test file."""
    from graftkit.train.trainer import train

    tmp = base / "clf"
    if (tmp / "runs" / "t" / "COMPLETE").is_file():
        return tmp / "runs" / "t"
    data = write_csv(tmp / "train.csv", ROWS * 4)
    cfg = run_config(tmp, model_dir, data, train={"epochs": 10, "learning_rate": 3e-3},
                     data={"test": str(write_csv(tmp / "test.csv", ROWS))})
    return train(cfg, log=lambda m: None).path


def ner_run(base: Path, model_dir: str) -> Path:
    """A tiny NER run on four CoNLL sentences (repeated), linear head."""
    from graftkit.train.trainer import train

    tmp = base / "ner"
    if (tmp / "runs" / "t" / "COMPLETE").is_file():
        return tmp / "runs" / "t"
    tmp.mkdir(parents=True, exist_ok=True)
    train_file = tmp / "train.conll"
    train_file.write_text((CONLL + "\n") * 4, encoding="utf-8")
    test_file = tmp / "test.conll"
    test_file.write_text(CONLL, encoding="utf-8")
    cfg = run_config(tmp, model_dir, train_file, task={"type": "ner", "tag_column": -1},
                     data={"format": "conll", "test": str(test_file),
                           "validation": str(test_file)},
                     train={"epochs": 5, "learning_rate": 3e-3})
    return train(cfg, log=lambda m: None).path


@contextmanager
def serving(app, **options):
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL, stops it after.
    ``options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile``/``ssl_keyfile``)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join()
