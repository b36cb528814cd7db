"""graftkit label loop: train, select, answer (from an oracle file or in the page), merge, again; the learning
curve and the record of each round; and the seeded random strategy it is measured against."""
from __future__ import annotations

import csv
import json
import socket
import threading
import time

import httpx
import numpy as np
import yaml
from typer.testing import CliRunner

from conftest import write_csv
from graftkit.apps.labelling.loop import LoopSettings, label_loop
from graftkit.apps.labelling.select import choose
from graftkit.cli import app

LABELLED = [["a wonderful and lovely film", "pos"], ["a dull and awful film", "neg"], ["great fun", "pos"],
            ["boring and bad", "neg"]]
POOL = [[f"a lovely and wonderful story number {i}", "pos"] for i in range(6)] + \
       [[f"an awful and dull story number {i}", "neg"] for i in range(6)]


def setup_files(tmp, tiny_model_dir):
    train_file = write_csv(tmp / "labelled.csv", LABELLED * 2)
    write_csv(tmp / "test.csv", [["a truly awful plot", "neg"], ["a truly lovely plot", "pos"]])
    write_csv(tmp / "pool.csv", [[t] for t, _ in POOL], header=("text",))
    write_csv(tmp / "gold.csv", POOL)
    tree = {"name": "loop", "output_dir": "runs", "model": {"name_or_path": tiny_model_dir},
            "data": {"train": "labelled.csv", "validation": "test.csv", "test": "test.csv", "max_length": 32},
            "train": {"max_steps": 4, "batch_size": 8, "learning_rate": 3e-3, "report_to": [], "early_stopping": None},
            "eval": {"plots": False, "robustness_rows": 0}}
    (tmp / "run.yaml").write_text(yaml.safe_dump(tree))
    return train_file


def test_an_oracle_loop_merges_the_selected_rows_round_by_round(tmp_path, tiny_model_dir):
    labelled = setup_files(tmp_path, tiny_model_dir)
    result = CliRunner().invoke(app, ["label", "loop", str(tmp_path / "run.yaml"), "--pool", str(tmp_path / "pool.csv"),
                                      "--oracle", str(tmp_path / "gold.csv"), "--k", "3", "--rounds", "2",
                                      "--strategy", "entropy", "--out", str(tmp_path / "loop")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "loop" / "loop.json").read_text())
    assert [r["labelled"] for r in record["rounds"]] == [8, 11] and [r["merged"] for r in record["rounds"]] == [3, 3]
    rows = list(csv.reader(labelled.open()))[1:]
    gold = dict(map(tuple, POOL))
    added = rows[len(LABELLED) * 2:]
    assert len(added) == 6 and all(gold[text] == label for text, label in added)  # answered as the oracle says
    assert len({text for text, _ in added}) == 6  # a row merged in round 0 is not selected again
    assert (tmp_path / "loop" / "learning_curve.png").stat().st_size > 0
    again = CliRunner().invoke(app, ["label", "loop", str(tmp_path / "run.yaml"), "--pool", str(tmp_path / "pool.csv"),
                                     "--oracle", str(tmp_path / "gold.csv"), "--rounds", "2", "--out",
                                     str(tmp_path / "loop")])
    assert again.exit_code == 0 and len(list(csv.reader(labelled.open()))) == len(rows) + 1  # done: nothing redone


def test_a_page_loop_goes_on_once_every_row_is_answered(tmp_path, tiny_model_dir):
    labelled = setup_files(tmp_path, tiny_model_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = LoopSettings(str(tmp_path / "pool.csv"), k=2, strategy="random", rounds=1, page=True, port=port)
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(label_loop(tmp_path / "run.yaml", tmp_path / "loop", settings,
                                                                    log=lambda m: None)))
    thread.start()
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 120
    while time.time() < deadline:
        try:
            view = httpx.get(f"{url}/api/sheet").json()
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    assert view["total"] == 2 and view["answered"] == 0
    for i, row in enumerate(view["rows"]):
        assert httpx.put(f"{url}/api/rows/{i}", json={"label": "neg"}).status_code == 200
    thread.join(timeout=60)
    assert not thread.is_alive() and done["rounds"][0]["merged"] == 2
    added = list(csv.reader(labelled.open()))[1 + len(LABELLED) * 2:]
    assert [label for _, label in added] == ["neg", "neg"] and {t for t, _ in added} == {r["text"] for r in view["rows"]}


def test_the_random_strategy_is_a_seeded_sample():
    probs = np.full((50, 2), 0.5)
    first, _ = choose("random", probs, False, None, 5, seed=3)
    assert list(first) == list(choose("random", probs, False, None, 5, seed=3)[0])
    assert list(first) != list(choose("random", probs, False, None, 5, seed=4)[0]) and len(set(first)) == 5
