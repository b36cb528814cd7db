"""Out-of-scope detection on Banking77 with held-out intents (the protocol of Zhang et al. 2021, ADB).

A seeded share of the 77 intents is known (``--known``, 0.75 by default: 58 intents); the others appear
only in validation and test, labelled ``oos``. One intent run (bundled MiniLM, ``task.out_of_scope`` with
every detector) trains on the known intents; graftkit fits the detectors after training and chooses each
one's threshold on validation for in-scope accuracy >= ``--target``. On the full official test set (3,080
questions) the script reports, per detector:

- AUROC and FPR95 (the share of out-of-scope questions kept at 95% in-scope recall);
- at the validation threshold: out-of-scope recall and precision, in-scope accuracy (correct and kept);
- the same three at the test set's own threshold for in-scope accuracy >= ``--target`` (``oracle``: the
  best a threshold can do on test, the operating point the targets name; not a deployable number);
- open-set classification as in ADB: every question predicted as its intent or as "open" (flagged), then
  accuracy, macro F1 over the known intents plus "open" (``f1``), F1 of "open" and macro F1 of the known.

    python bench/ood.py --known 0.75 --epochs 6 --out bench/out/ood-75.json
    python bench/ood.py --known 0.75 --epochs 6 --oos objective=contrastive --out bench/out/ood-75-con.json

``--oos KEY=VALUE`` adds a key to ``task.out_of_scope`` (YAML values); ``--run DIR`` scores a run this script
trained before (same ``--known`` and ``--seed``) instead of training. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

REPO = Path(__file__).resolve().parents[1]
OPEN = "oos"


def splits(known: float, per_intent: int, val_per_intent: int, seed: int):
    """(train, validation, test) rows; held-out intents' questions are ``oos`` in validation and test only."""
    rng = random.Random(seed)
    train_all, test_all = common.load_banking77(0, seed)
    intents = sorted({lab for _, lab in train_all})
    kept = set(rng.sample(intents, round(known * len(intents))))
    train, val, seen = [], [], {}
    for text, lab in train_all:
        seen[lab] = seen.get(lab, 0) + 1
        if lab not in kept:
            if seen[lab] <= val_per_intent:
                val.append((text, OPEN))
        elif seen[lab] <= val_per_intent:
            val.append((text, lab))
        elif not per_intent or seen[lab] <= val_per_intent + per_intent:
            train.append((text, lab))
    test = [(t, lab if lab in kept else OPEN) for t, lab in test_all]
    return train, val, test, kept


def open_set(gold: list[str], predicted: list[str], flagged: np.ndarray, known: set[str]) -> dict:
    """ADB's open-set metrics: a flagged question is predicted "open"."""
    pred = [OPEN if f else p for p, f in zip(predicted, flagged)]
    classes = sorted(known) + [OPEN]
    per = f1_score(gold, pred, labels=classes, average=None, zero_division=0)
    return {"accuracy": round(float(accuracy_score(gold, pred)), 4), "f1": round(float(per.mean()), 4),
            "f1_open": round(float(per[-1]), 4), "f1_known": round(float(per[:-1].mean()), 4)}


def parse_extra(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--known", type=float, default=0.75)
    p.add_argument("--per-intent", type=int, default=0, help="training rows per known intent (0: all left)")
    p.add_argument("--val-per-intent", type=int, default=10, help="validation rows taken first from each intent")
    p.add_argument("--epochs", type=float, default=6.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--oos", action="append", default=[], help="KEY=VALUE for task.out_of_scope")
    p.add_argument("--run", type=Path, help="score this run folder (trained by this script) instead of training")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "ood.json")
    args = p.parse_args()
    from graftkit.inference.predictor import Predictor
    from graftkit.modeling.ood import at_threshold, choose_threshold

    tmp = Path(tempfile.mkdtemp(prefix="bench-ood-"))
    train_rows, val, test, known = splits(args.known, args.per_intent, args.val_per_intent, args.seed)
    files = {n: common.write_csv(tmp / f"{n}.csv", rows) for n, rows in
             (("train", train_rows), ("validation", val), ("test", test))}
    t0 = time.perf_counter()
    run_path = args.run or train_intents(args, tmp, files).path
    train_s = None if args.run else round(time.perf_counter() - t0, 1)  # None: scored a run trained before
    report = json.loads((run_path / "metrics.json").read_text())["out_of_scope"]
    pred = Predictor(run_path)
    texts, gold = [t for t, _ in test], [lab for _, lab in test]
    logits, feats = pred.outputs(texts, 128, pred.detector.needs_features)
    scores = pred.detector.scores(logits, feats)
    labels = pred.task.labels
    predicted = [labels[i] for i in logits.argmax(axis=-1)]
    rows = {}
    oos, correct = np.array(gold) == OPEN, np.array(predicted) == np.array(gold)
    for name, d in report["detectors"].items():
        best, _ = choose_threshold(scores[name], oos, correct, args.target, 0.95)
        rows[name] = {**d["test"], "threshold": d["threshold"], "target_reached": d["target_reached"],
                      "oracle": at_threshold(scores[name], best, oos, correct),
                      "open_set": open_set(gold, predicted, scores[name] > d["threshold"], known)}
    closed = open_set(gold, predicted, np.zeros(len(test), bool), known)
    out = {"known_intents": len(known), "train_rows": len(train_rows), "val_rows": len(val), "test_rows": len(test),
           "test_oos_rows": sum(lab == OPEN for lab in gold), "train_seconds": train_s, "args": vars(args),
           "chosen": report["detector"], "no_detector": closed, "detectors": rows}
    common.write_json(args.out, out)
    print(f"known intents {len(known)}, train {len(train_rows)}, val {len(val)}, test {len(test)} "
          f"({out['test_oos_rows']} out of scope); trained in {train_s} s; chosen: {report['detector']}")
    print("| detector | AUROC | FPR95 | OOS recall | OOS precision | in-scope acc | open-set acc | F1 | F1 open | "
          "F1 known | oracle OOS recall | oracle in-scope acc |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        o = r["open_set"]
        print(f"| {name} | {r['auroc']} | {r['fpr95']} | {r['oos_recall']} | {r['oos_precision']} | "
              f"{r['in_scope_accuracy']} | {o['accuracy']} | {o['f1']} | {o['f1_open']} | {o['f1_known']} | "
              f"{_r(r['oracle']['oos_recall'])} | {_r(r['oracle']['in_scope_accuracy'])} |")
    print(f"| (no detector) | | | | | | {closed['accuracy']} | {closed['f1']} | {closed['f1_open']} | "
          f"{closed['f1_known']} | | |")


def _r(x) -> float | None:
    return None if x is None else round(x, 4)


def train_intents(args, tmp: Path, files: dict):
    """The intent run on the known intents, with every detector fitted (graftkit's own training)."""
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    return train(config_from_dict({
        "name": "intent", "output_dir": str(tmp / "runs"),
        "data": {"train": str(files["train"]), "validation": str(files["validation"]), "test": str(files["test"]),
                 "max_length": 64},
        "model": {"name_or_path": "bundled:minilm"},
        "task": {"type": "classification", "out_of_scope": {"label": OPEN, "target_in_scope_accuracy": args.target,
                                                             **parse_extra(args.oos)}},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None}, "eval": {"plots": False, "robustness_rows": 0}}),
        log=lambda m: print(m, file=sys.stderr))


if __name__ == "__main__":
    main()
