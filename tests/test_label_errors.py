"""--find-label-errors: cross-validated training + cleanlab find planted label flips; too few rows is refused."""
from __future__ import annotations

import csv

import pytest

from conftest import run_config, write_csv
from graftkit.errors import DataError
from graftkit.train.label_errors import find_label_errors
from test_explain import keyword_rows


def test_cleanlab_finds_planted_flips(tmp_path, tiny_model_dir):
    rows = keyword_rows(150, seed=3)
    flipped = {7, 40, 71, 103, 130}  # rows whose keyword says one class and whose label says another
    swap = {"pos": "neg", "neg": "pos", "neu": "pos"}
    for i in flipped:
        rows[i][1] = swap[rows[i][1]]
    data = write_csv(tmp_path / "noisy.csv", rows)
    cfg = run_config(tmp_path, tiny_model_dir, data, train={"epochs": 12, "learning_rate": 3e-3,
                                                            "batch_size": 16})
    result = find_label_errors(cfg, folds=3, out_dir=tmp_path / "out", log=lambda m: None)
    # the splits are shuffled: map the flagged rows back to their file lines (line = index + 2)
    with open(tmp_path / "out" / "label_issues.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    lines = {int(r["line"]) for r in table}
    planted = {i + 2 for i in flipped}
    top = {int(r["line"]) for r in table[:len(planted)]}
    assert len(top & planted) >= 4, (table[:8], planted)  # precision at k = planted count >= 0.8
    assert len(lines) <= 3 * len(planted)  # clean rows are mostly left alone
    assert table[0]["file"] == str(data) and list(table[0])[:2] == ["file", "line"]
    assert result["flagged_count"] == len(table) and (tmp_path / "out" / "label_issues.png").is_file()
    row = next(r for r in table if int(r["line"]) == 9)  # row 7: "awful" labelled pos
    assert "awful" in row["text"] and row["given"] == "pos" and row["suggested"] == "neg"


def test_too_few_rows_per_class_for_the_folds(tmp_path, tiny_model_dir):
    rows = [[f"text {i}", "a"] for i in range(10)] + [["rare one", "b"], ["rare two", "b"]]
    data = write_csv(tmp_path / "small.csv", rows)
    cfg = run_config(tmp_path, tiny_model_dir, data, data={"split": {"validation": 0.0, "test": 0.0}})
    with pytest.raises(DataError, match=r"3 folds needs at least 3 rows of every class.*'b' \(2\)"):
        find_label_errors(cfg, folds=3, out_dir=tmp_path / "out", log=lambda m: None)


@pytest.mark.parametrize("multi_label", [False, True])
def test_cleanlab_runs_in_this_process(monkeypatch, multi_label):
    """cleanlab's default forks a process pool from a process full of torch threads: a child can deadlock
    (the suite once hung in it). The ranking (FindsLabelErrors.rank) must stay serial, whatever the machine's
    core count."""
    import multiprocessing
    from types import SimpleNamespace

    import numpy as np

    from graftkit.tasks.capabilities import FindsLabelErrors
    from graftkit.tasks.classification import ClassificationTask
    from graftkit.train.label_errors import COMMAND

    def no_pool(*a, **kw):
        raise AssertionError("cleanlab forked a multiprocessing.Pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr("psutil.cpu_count", lambda logical=True: 8)  # cleanlab sizes its default pool by this
    task = ClassificationTask()
    task.multi_label, task.labels = multi_label, ["a", "b", "c"]
    labels = ["a", "b", "c"] * 20
    rows = [SimpleNamespace(label=[x] if multi_label else x) for x in labels]
    probs = [np.eye(3)[task.label2id[x]] * 0.8 + 0.2 / 3 for x in labels]
    probs[4] = np.array([0.9, 0.05, 0.05])  # row 4 is labelled "b" but looks like "a"
    flagged, quality = task.capability(FindsLabelErrors, COMMAND).rank(rows, probs)
    assert flagged[0] == 4 and quality.argmin() == 4
