"""NER ensembles vote on entity spans: the rule on hand-made logits, a CRF member, and tiny trained runs."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import run_config
from graftkit.cli import app
from graftkit.tasks.capabilities import DecodesLogits, Votes
from graftkit.tasks.common.ensemble import SoftmaxMean
from graftkit.tasks.ner.config import NerConfig
from graftkit.train import ensemble as ens
from graftkit.train.ensemble import build_ensemble
from graftkit.errors import GraftkitError
from graftkit.inference.predictor import Predictor
from graftkit.tasks.ner import NerTask
from graftkit.tasks.ner.ensemble import SpanVote, min_votes, vote_spans
from graftkit.tasks.ner.preprocess import Window
from graftkit.train.trainer import train

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
TEXT = "Angela Merkel visited Munich"
WORDS = [(0, 6), (7, 13), (14, 21), (22, 28)]
# one window: position 0 and 5 are special tokens, positions 1-4 the four words
CONTEXT = ([(TEXT, WORDS)], [Window(0, [(i + 1, (i, 0, e - s)) for i, (s, e) in enumerate(WORDS)])])


def ner_task(transitions=None) -> NerTask:
    """A linear-head NER task, or a CRF one when ``transitions`` (start, end, trans) are given."""
    task = NerTask(NerConfig(crf=transitions is not None))
    task.load_state({"labels": LABELS, "types": ["LOC", "PER"], "scheme": "IOB2", "crf": transitions is not None})
    task.transitions = transitions
    return task


def logits_of(*units: dict[str, float]) -> np.ndarray:
    """(1, 6, tags) log-probabilities; each unit names its tags' probabilities, the rest share what is left."""
    out = np.full((1, 6, len(LABELS)), np.log(1 / len(LABELS)), dtype=np.float32)
    for pos, probs in enumerate(units, start=1):
        rest = (1 - sum(probs.values())) / (len(LABELS) - len(probs))
        out[0, pos] = np.log([probs.get(t, rest) for t in LABELS])
    return out


def decode(task: NerTask, logits: np.ndarray):
    return task.capability(DecodesLogits, "predict").decode(logits, CONTEXT)


def spans(task: NerTask, logits: np.ndarray) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, e.label) for e in decode(task, logits)[0].entities]


def voting(members, vote=0.5) -> NerTask:
    task = ner_task()
    task.span_vote = SpanVote(members, vote)
    return task


def test_min_votes_and_overlaps():
    assert [min_votes(n, 0.5) for n in (2, 3, 4, 5)] == [2, 2, 3, 3]
    assert min_votes(3, 0.0) == 1 and min_votes(3, 0.99) == 3
    label2id = {t: i for i, t in enumerate(LABELS)}
    probs = np.full((3, len(LABELS)), 0.2)
    probs[:, 3] = [0.3, 0.1, 0.1]  # B-PER is likelier on unit 0 than I-PER on unit 1
    # union of overlapping spans: the one with more votes wins, then the likelier one
    assert vote_spans([[(0, 2, "PER")], [(0, 2, "PER")], [(0, 1, "PER")]], 1, probs, label2id, "IOB2") == \
        [(0, 2, "PER")]
    assert vote_spans([[(0, 2, "PER")], [(0, 1, "PER"), (2, 3, "LOC")]], 1, probs, label2id, "IOB2") == \
        [(0, 1, "PER"), (2, 3, "LOC")]
    assert vote_spans([[(0, 2, "PER")], [(0, 1, "PER")]], 2, probs, label2id, "IOB2") == []


def test_vote_differs_from_mean_probability():
    unsure_per = [{"B-PER": 0.45, "O": 0.40}, {"I-PER": 0.45, "O": 0.40}, {"O": 0.9}, {"O": 0.5, "B-LOC": 0.35}]
    sure_loc = [{"O": 0.96, "B-PER": 0.01, "I-PER": 0.01}] * 2 + [{"O": 0.9}, {"B-LOC": 0.9, "O": 0.025}]
    members = [logits_of(*unsure_per), logits_of(*unsure_per), logits_of(*sure_loc)]
    assert [spans(ner_task(), m) for m in members] == [[(0, 13, "PER")], [(0, 13, "PER")], [(22, 28, "LOC")]]

    mean = SoftmaxMean(None).combine_mean([torch.from_numpy(m) for m in members]).numpy()
    assert spans(ner_task(), mean) == [(22, 28, "LOC")]  # C's confident LOC outweighs two hesitant PER votes

    ensemble = voting([ner_task() for _ in members])
    logits = ensemble.capability(Votes, "ensemble").combine_vote([torch.from_numpy(m) for m in members]).numpy()
    assert logits.shape == (1, 6, 3 * len(LABELS)) and ensemble.logit_width == 3 * len(LABELS)
    entities = decode(ensemble, logits)[0].entities
    assert [(e.start, e.end, e.label, e.text) for e in entities] == [(0, 13, "PER", "Angela Merkel")]
    assert entities[0].score == pytest.approx((0.45 + 0.45 + 0.01) / 3, abs=1e-4)  # mean member probability
    assert spans(voting([ner_task() for _ in members], vote=0.0), logits) == [(0, 13, "PER"), (22, 28, "LOC")]
    assert spans(voting([ner_task() for _ in members], vote=0.99), logits) == []
    with pytest.raises(ValueError, match="15 logit columns"):
        decode(ensemble, members[0])


def test_crf_member_votes_with_its_viterbi_path():
    short_per = logits_of({"B-PER": 0.6}, {"O": 0.6, "I-PER": 0.3}, {"O": 0.9}, {"O": 0.9})
    long_per = logits_of({"B-PER": 0.6}, {"I-PER": 0.6}, {"O": 0.9}, {"O": 0.9})
    trans = np.zeros((len(LABELS), len(LABELS)), dtype=np.float32)
    trans[LABELS.index("B-PER"), LABELS.index("I-PER")] = 5.0  # this CRF learned that PER names go on
    crf = ner_task((np.zeros(len(LABELS), np.float32), np.zeros(len(LABELS), np.float32), trans))
    assert spans(crf, short_per) == [(0, 13, "PER")] and spans(ner_task(), short_per) == [(0, 6, "PER")]

    # members: linear long PER, CRF over short-PER emissions (long by its Viterbi path), linear short PER
    ensemble = voting([ner_task(), crf, ner_task()])
    assert spans(ensemble, np.concatenate([long_per, short_per, short_per], axis=-1)) == [(0, 13, "PER")]
    # the same emissions decoded without the CRF would have voted for "Angela" alone
    linear = voting([ner_task(), ner_task(), ner_task()])
    assert spans(linear, np.concatenate([long_per, short_per, short_per], axis=-1)) == [(0, 6, "PER")]


SENTENCES = [
    ("Angela Merkel visited Munich .", [(0, 13, "PER"), (22, 28, "LOC")]),
    ("Siemens opened an office in Paris .", [(0, 7, "ORG"), (28, 33, "LOC")]),
    ("John Carter works for Siemens .", [(0, 11, "PER"), (22, 29, "ORG")]),
    ("We met in Paris yesterday .", [(10, 15, "LOC")]),
    ("Tesco hired Bob .", [(0, 5, "ORG"), (12, 15, "PER")]),
    # longer than one window at max_length 12: members and ensemble stitch overlapping windows
    ("Yesterday John Carter and Angela Merkel met in Paris with Siemens staff near Munich .",
     [(10, 21, "PER"), (26, 39, "PER"), (47, 52, "LOC"), (58, 65, "ORG"), (77, 83, "LOC")]),
]


def write_jsonl(path, rows, repeat=1):
    lines = [json.dumps({"text": t, "entities": [{"start": s, "end": e, "label": y} for s, e, y in ents]})
             for t, ents in rows] * repeat
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: the third member learns another annotation of one sentence, so that the members disagree
OTHER = SENTENCES[:4] + [("Tesco hired Bob .", [(0, 5, "LOC")])] + SENTENCES[5:]


def test_ner_ensemble_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    # the odd member learns another label for one sentence, so that the vote has something to outvote; ensembles
    # refuse members trained on other data (tests/test_ensemble_checks.py), so that check is off here
    monkeypatch.setattr(ens, "_check_same_data", lambda runs: None)
    test_file = write_jsonl(tmp_path / "test.jsonl", SENTENCES)
    runs = []
    for seed, crf, rows in ((1, True, SENTENCES), (2, False, SENTENCES), (3, False, OTHER)):  # CRF member first:
        # the ensemble copies the CRF member's state, so it comes first
        train_file = write_jsonl(tmp_path / "train.jsonl", rows, repeat=4)
        cfg = run_config(tmp_path, tiny_model_dir, train_file, name=f"ner{seed}", task={"type": "ner", "crf": crf},
                         data={"test": str(test_file), "max_length": 12, "split": {"validation": 0.0, "test": 0.0}},
                         train={"seed": seed, "epochs": 4, "learning_rate": 1e-2})
        runs.append(train(cfg, log=lambda m: None).path)

    out = tmp_path / "runs" / "ens"
    res = build_ensemble(runs, out, log=lambda m: None)
    assert json.loads((out / "ensemble.json").read_text())["combine"] == "vote"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["f1"] == res["test"]["f1"] <= 1.0 and len(metrics["members"]) == 3

    texts = [t for t, _ in SENTENCES]
    members = [Predictor(r).predict(texts) for r in runs]
    predicted = Predictor(out).predict(texts)
    n_voted = 0
    for i, (text, p) in enumerate(zip(texts, predicted)):
        votes = Counter((e.start, e.end, e.label) for m in members for e in m[i].entities)
        majority = sorted(s for s, v in votes.items() if v >= 2)
        assert [(e.start, e.end, e.label) for e in p.entities] == majority
        assert all(e.text == text[e.start:e.end] and 0 < e.score <= 1 for e in p.entities)
        n_voted += len(majority)
    assert n_voted > 0  # the members learned enough to agree on some entities
    tesco = [[(e.start, e.end, e.label) for e in m[4].entities] for m in members + [predicted]]
    assert tesco[1] == tesco[3] == SENTENCES[4][1] and tesco[2] == OTHER[4][1]  # the odd member is outvoted

    runner = CliRunner()
    mean_out = tmp_path / "runs" / "mean"
    result = runner.invoke(app, ["ensemble", str(runs[0]), str(runs[1]), "--out", str(mean_out),
                                 "--combine", "mean"])
    assert result.exit_code == 0, result.output
    assert json.loads((mean_out / "ensemble.json").read_text())["combine"] == "mean"
    assert "f1" in json.loads((mean_out / "metrics.json").read_text())["test"]
    with pytest.raises(GraftkitError, match="strict majority"):
        build_ensemble(runs, tmp_path / "bad", vote=1.0)
    with pytest.raises(GraftkitError, match="is a voting ensemble"):  # its logits are not probabilities
        build_ensemble([out, runs[0]], tmp_path / "bad", combine="mean")
    with pytest.raises(GraftkitError, match="unknown combine"):
        build_ensemble(runs, tmp_path / "bad", combine="median")
