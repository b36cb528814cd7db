"""Few labels, few-shot arm: SetFit through graftkit (train.strategy few_shot) against the setfit library used
directly and plain fine-tuning, at the same budget.

SST-2 (scored on the full dev set, 872 rows; the test labels are not public) and Banking77 (full test set,
3,080 rows), k labelled rows per class drawn with each seed; both arms train on the same rows with the bundled
model. The plain arm gets its own care: a higher learning rate than the default and at least ``--plain-steps``
optimiser steps (many epochs over a few rows), as few-shot baselines are run in the SetFit paper.

    python bench/few_labels.py --seeds 0 1 2
    python bench/few_labels.py --only sst2:8 banking77:10      # the target rows first

Each (dataset, k, seed, arm) result is kept in bench/out/few-labels.json as it lands, so a stopped run picks up
where it was; the table (mean ± sd over seeds) is printed from that file.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "few-labels.json"
BUDGETS = {"sst2": (8, 16, 64), "banking77": (8, 10, 16, 64)}
ARMS = ("few_shot", "setfit", "plain")


def labelled_rows(dataset: str, per_class: int, seed: int):
    """k rows per class drawn (seeded) from the training set, and the full test set."""
    train, test = common.load_sst2(10**9, seed) if dataset == "sst2" else common.load_banking77(0, seed)
    by_label = defaultdict(list)
    for text, label in train:
        by_label[label].append((text, label))
    rng = random.Random(seed)
    picked = [row for rows in by_label.values() for row in rng.sample(rows, per_class)]
    rng.shuffle(picked)
    return picked, test


def arm_config(arm: str, train_csv: Path, test_csv: Path, tmp: Path, seed: int, rows: int, args) -> dict:
    common_train = {"seed": seed, "report_to": [], "early_stopping": None, "batch_size": 16, "logging_steps": 50}
    if arm == "few_shot":  # SetFit's defaults (1 epoch of 20 pairs per row, lr 2e-5), capped for the 77-class set
        pair_steps = math.ceil(2 * 20 * rows / 16)  # SetFit draws 20 same-label and 20 other-label pairs per row
        train = {**common_train, "strategy": "few_shot", "epochs": 1, "learning_rate": 2e-5,
                 "few_shot": {"pairs_per_row": 20}}
        if pair_steps > args.few_shot_steps:  # max_steps also repeats data, so set it only to cut
            train["max_steps"] = args.few_shot_steps
    else:
        epochs = max(10, math.ceil(args.plain_steps / math.ceil(rows / 16)))
        train = {**common_train, "epochs": epochs, "learning_rate": args.plain_lr, "warmup": 0.1}
    return {"name": f"{arm}-{seed}", "output_dir": str(tmp / "runs"),
            "data": {"train": str(train_csv), "test": str(test_csv), "max_length": 64,
                     "split": {"validation": 0.0, "test": 0.0}},
            "model": {"name_or_path": "bundled:minilm"}, "train": train,
            "eval": {"plots": False, "save_predictions": False, "calibrate": False, "robustness_rows": 0}}


def run_setfit(dataset: str, per_class: int, seed: int, args) -> dict:
    """The peer: the setfit library used directly, as its README shows, on the bundled model (mean pooling)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from graftkit.modeling.load import resolve_model_path

    picked, test = labelled_rows(dataset, per_class, seed)
    names = sorted({label for _, label in picked})
    model = SetFitModel.from_pretrained(str(resolve_model_path("bundled:minilm")))
    steps = math.ceil(2 * 20 * len(picked) / 16)
    settings = TrainingArguments(batch_size=16, num_epochs=1, num_iterations=20, seed=seed, report_to="none",
                                 max_steps=args.few_shot_steps if steps > args.few_shot_steps else -1,
                                 max_length=64)
    rows = Dataset.from_dict({"text": [t for t, _ in picked], "label": [names.index(y) for _, y in picked]})
    start = time.perf_counter()
    Trainer(model=model, args=settings, train_dataset=rows).train()
    seconds = time.perf_counter() - start
    guesses = model.predict([t for t, _ in test], batch_size=64)
    accuracy = sum(names[int(g)] == y for g, (_, y) in zip(guesses, test)) / len(test)
    return {"accuracy": accuracy, "train_rows": len(picked), "seconds": round(seconds, 1)}


def run_arm(dataset: str, per_class: int, seed: int, arm: str, args) -> dict:
    from graftkit.tasks.run_config import config_from_dict

    if arm == "setfit":
        return run_setfit(dataset, per_class, seed, args)
    from graftkit.train.trainer import train

    picked, test = labelled_rows(dataset, per_class, seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = config_from_dict(arm_config(arm, common.write_csv(tmp / "train.csv", picked),
                                          common.write_csv(tmp / "test.csv", test), tmp, seed, len(picked), args))
        start = time.perf_counter()
        run = train(cfg, log=lambda s: None)
        seconds = time.perf_counter() - start
        metrics = json.loads(run.metrics.read_text())
    return {"accuracy": metrics["test"]["accuracy"], "macro_f1": metrics["test"].get("macro_f1"),
            "train_rows": len(picked), "seconds": round(seconds, 1)}


def key(dataset: str, per_class: int, seed: int, arm: str) -> str:
    return f"{dataset}:{per_class}:{seed}:{arm}"


def table(results: dict) -> str:
    cells = defaultdict(dict)
    for k, r in results.items():
        dataset, per_class, seed, arm = k.split(":")
        cells[(dataset, int(per_class))].setdefault(arm, []).append(r["accuracy"])
    lines = ["| data set | per class | graftkit few_shot | setfit library used directly | plain fine-tuning | "
             "few_shot − plain (points) | seeds |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for (dataset, per_class), arms in sorted(cells.items()):
        fs, sf, pl = arms.get("few_shot", []), arms.get("setfit", []), arms.get("plain", [])
        diff = f"{100 * (statistics.mean(fs) - statistics.mean(pl)):+.1f}" if fs and pl else "–"
        lines.append(f"| {dataset} | {per_class} | {common.mean_sd(fs)} | {common.mean_sd(sf)} | {common.mean_sd(pl)} | "
                     f"{diff} | {min(len(fs), len(pl))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="*", help="dataset:k pairs to run (default: every budget of both sets)")
    ap.add_argument("--few-shot-steps", type=int, default=500, help="cap on SetFit's contrastive steps")
    ap.add_argument("--plain-steps", type=int, default=400, help="at least this many optimiser steps, plain arm")
    ap.add_argument("--plain-lr", type=float, default=1e-4)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    args = ap.parse_args()
    jobs = [tuple(p.split(":")) for p in args.only] if args.only else [
        (d, str(k)) for d, ks in BUDGETS.items() for k in ks]
    results = common.Results(OUT, vars(args))
    for dataset, per_class in jobs:
        for seed in args.seeds:
            for arm in args.arms:
                results.get(key(dataset, int(per_class), seed, arm),
                            lambda: run_arm(dataset, int(per_class), seed, arm, args))
    print(table(results.results))


if __name__ == "__main__":
    main()
