"""graftkit label select / import: strategies pick the planted rows; the pool drops what is labelled or held out;
import refuses bad rows by file and line and merges the rest."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import run_config, write_csv
from graftkit.apps.labelling.answers import import_answers
from graftkit.apps.labelling.select import choose, k_center, most_uncertain, select
from graftkit.cli import app
from graftkit.errors import DataError
from graftkit.train.trainer import train

#: 0 sure; 1 a tie of two classes (margin 0, entropy ln 2); 2 spread over three (entropy 1.09, margin 0.1);
#: 3 fairly sure; 4 all but uniform (the highest entropy, margin 0.01)
PROBS = np.array([[0.98, 0.01, 0.01], [0.5, 0.5, 0.0], [0.4, 0.3, 0.3], [0.9, 0.05, 0.05], [0.34, 0.33, 0.33]])


def test_entropy_and_margin_pick_the_planted_rows():
    assert most_uncertain(PROBS, False, "entropy", 2)[0].tolist() == [4, 2]
    assert most_uncertain(PROBS, False, "margin", 2)[0].tolist() == [1, 4]
    multi = np.array([[0.99, 0.01], [0.5, 0.95], [0.5, 0.45], [0.1, 0.05]])
    assert most_uncertain(multi, True, "entropy", 1)[0].tolist() == [2]
    assert most_uncertain(multi, True, "margin", 2)[0].tolist() == [2, 1]


def _near(direction: int, noise: float, rng) -> np.ndarray:
    v = np.zeros(4)
    v[direction] = 1.0
    return v + rng.normal(scale=noise, size=4)


def test_diversity_picks_the_rows_far_from_the_labelled_ones():
    rng = np.random.default_rng(0)
    labelled = np.stack([_near(0, 0.01, rng) for _ in range(3)])
    pool = np.stack([_near(0, 0.01, rng), _near(0, 0.01, rng), _near(1, 0.01, rng), _near(0, 0.01, rng),
                     _near(2, 0.01, rng)])
    assert sorted(k_center(pool, labelled, 2).tolist()) == [2, 4]


def test_hybrid_is_uncertain_without_picking_near_copies():
    rng = np.random.default_rng(0)
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.51, 0.49], [0.6, 0.4], [0.99, 0.01], [0.98, 0.02]])
    feats = np.stack([_near(1, 0.001, rng), _near(1, 0.001, rng), _near(1, 0.001, rng), _near(2, 0.01, rng),
                      _near(3, 0.01, rng), _near(3, 0.01, rng)])
    labelled = np.stack([_near(0, 0.01, rng)])

    def features(positions):
        return feats[positions], labelled

    assert set(choose("entropy", probs, False, features, 2)[0].tolist()) <= {0, 1, 2}  # two near-copies
    picked = choose("hybrid", probs, False, features, 2, factor=2)[0].tolist()
    assert 3 in picked and len(set(picked) & {0, 1, 2}) == 1
    assert 4 not in picked and 5 not in picked  # diverse, but sure: outside the uncertain candidates


ROWS = [["a wonderful and lovely film", "pos"], ["a dull and awful film", "neg"], ["great fun", "pos"],
        ["boring and bad", "neg"], ["i loved it", "pos"], ["i hated it", "neg"]]


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("label-run")
    data = write_csv(tmp / "train.csv", ROWS * 3)
    test = write_csv(tmp / "test.csv", [["a truly awful plot", "neg"], ["a truly lovely plot", "pos"]])
    cfg = run_config(tmp, tiny_model_dir, data, data={"test": str(test), "validation": str(test)},
                     train={"max_steps": 4, "learning_rate": 3e-3}, eval={"plots": False, "robustness_rows": 0})
    return train(cfg, log=lambda m: None).path, data


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_select_drops_overlap_with_a_count_and_writes_rows_to_answer(labelled_run, tmp_path):
    run, _ = labelled_run
    fresh = [[f"an unseen review number {i}"] for i in range(5)]
    pool = write_csv(tmp_path / "pool.csv", fresh + [["A wonderful and lovely film!"], ["a truly awful plot"],
                                                     [fresh[0][0]]], header=("text",))
    out = tmp_path / "next.csv"
    result = _invoke("label", "select", run, "--pool", pool, "--k", 3, "--strategy", "hybrid", "--out", out)
    assert result.exit_code == 0, result.output
    assert ("5 candidates; dropped 1 already labelled, 1 in the test split, 1 repeated in the pool"
            in result.output)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and {r["text"] for r in rows} <= {f[0] for f in fresh}
    assert all(r["label"] == "" and r["suggested"] in ("pos", "neg") for r in rows)


def test_select_refuses_in_one_line(labelled_run, tmp_path, tiny_model_dir):
    run, _ = labelled_run
    empty = write_csv(tmp_path / "empty.csv", [], header=("text",))
    seen = write_csv(tmp_path / "seen.csv", [[r[0]] for r in ROWS], header=("text",))
    regression = tmp_path / "reg"
    cfg = run_config(regression, tiny_model_dir, write_csv(tmp_path / "reg.csv", [[r[0], float(i)] for i, r in
                                                                                  enumerate(ROWS * 2)]),
                     task={"type": "regression"}, train={"max_steps": 1}, eval={"plots": False, "robustness_rows": 0})
    reg_run = train(cfg, log=lambda m: None).path
    for args, message in [
        ((run, "--pool", empty), "empty.csv: no usable rows"),
        ((run, "--pool", seen), "no candidates are left"),
        ((run, "--pool", seen, "--strategy", "nearest"), "unknown strategy"),
        ((run, "--strategy", "margin"), "needs --pool"),
        ((run, "--pool", seen, "--strategy", "recheck"), "reads no --pool"),
        ((reg_run, "--pool", seen), "label select --strategy entropy: regression runs do not support this"),
    ]:
        result = _invoke("label", "select", *args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output


def test_recheck_finds_the_planted_wrong_labels(labelled_run, tmp_path):
    run, _ = labelled_run
    noisy = write_csv(tmp_path / "noisy.csv", ROWS * 3 + [["a wonderful and lovely film", "neg"], ["i hated it", "pos"]])
    once = {"max_steps": 40, "eval_strategy": "steps", "eval_steps": 40}  # one checkpoint per fold
    chosen = select(str(run), 2, "recheck", labelled=str(noisy), train_overrides=once, log=lambda m: None)
    assert {(c.example.line, c.given, c.suggested) for c in chosen.candidates} == {(20, "neg", "pos"), (21, "pos", "neg")}
    assert all(c.example.path == str(noisy) and 0.0 <= c.score < 0.5 for c in chosen.candidates)


def _answers(path, rows):
    return write_csv(path, [[t, lab, "", "", "", ""] for t, lab in rows],
                     header=("text", "label", "suggested", "score", "given", "source"))


@pytest.mark.parametrize("bad,line,message", [
    (["a fresh review", "meh"], 3, "label 'meh' is not one of the run's labels (neg, pos)"),
    (["I loved it.", "pos"], 3, "already labelled ("),
    (["a truly lovely plot", "pos"], 3, "also in the run's test split"),
    (["a new one", "neg"], 3, "answered twice (first at line 2)"),
])
def test_import_refuses_bad_rows_by_file_and_line(labelled_run, tmp_path, bad, line, message):
    run, data = labelled_run
    before = data.read_text()
    answers = _answers(tmp_path / "answers.csv", [["a new one", "pos"], bad, ["not answered yet", ""]])
    with pytest.raises(DataError) as err:
        import_answers(str(answers), run, str(data))
    assert str(err.value).startswith(f"{answers}, line {line}, field ") and message in str(err.value), str(err.value)
    assert data.read_text() == before  # nothing merged


def test_import_merges_answered_rows(labelled_run, tmp_path):
    run, data = labelled_run
    copy = write_csv(tmp_path / "labelled.csv", [r for r in csv.reader(data.open())][1:])
    answers = _answers(tmp_path / "answers.csv", [["a new one", "pos"], ["skip me", ""], ["an odd one", "neg"]])
    result = _invoke("label", "import", answers, run, "--labelled", copy)
    assert result.exit_code == 0, result.output
    assert "merged 2 rows" in result.output and "1 rows not answered yet" in result.output
    rows = list(csv.DictReader(copy.open()))
    assert rows[-2:] == [{"text": "a new one", "label": "pos"}, {"text": "an odd one", "label": "neg"}]
    assert len(rows) == len(ROWS) * 3 + 2
