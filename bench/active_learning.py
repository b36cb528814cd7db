"""Active learning, simulated through `graftkit label loop --oracle`: gold labels stay hidden until a row is
selected. Arms: random, uncertainty (entropy), diversity (k-center greedy) and hybrid, from 2 labelled rows per
class, the labelled set doubling each round; and the same model trained on all the training rows (the ceiling).

    python bench/active_learning.py --datasets fpb --seeds 0 1 --rounds 6

Reports the learning curves (test accuracy against labelled rows) as a plot per data set and, per arm, the
labels it needs to reach 95% of the full-data accuracy (interpolated between rounds; "not reached" when its
curve stays below). Results land in bench/out/active-learning.json as each curve finishes.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "active-learning.json"
ARMS = ("random", "entropy", "diversity", "hybrid")


def data(dataset: str):
    return common.fpb_split(42) if dataset == "fpb" else common.load_banking77(0, 42)


def seed_rows(train, per_class: int, seed: int):
    by_label = defaultdict(list)
    for row in train:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    return [row for rows in by_label.values() for row in rng.sample(rows, per_class)]


def config(tmp: Path, train_csv: Path, test_csv: Path, seed: int, args) -> Path:
    tree = {"name": "al", "output_dir": str(tmp / "runs"), "model": {"name_or_path": "bundled:minilm"},
            "data": {"train": str(train_csv), "test": str(test_csv), "max_length": 64,
                     "split": {"validation": 0.0, "test": 0.0}},
            "train": {"epochs": 10, "max_steps": args.steps, "batch_size": 16, "learning_rate": 1e-4, "warmup": 0.1,
                      "seed": seed, "report_to": [], "early_stopping": None, "logging_steps": 50},
            "eval": {"plots": False, "save_predictions": False, "calibrate": False, "robustness_rows": 0}}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def curve(dataset: str, seed: int, arm: str, args) -> dict:
    """One loop: the labelled set doubles each round; returns (labelled rows, test accuracy) per round."""
    from graftkit.apps.labelling.loop import LoopSettings, label_loop

    train, test = data(dataset)
    start = seed_rows(train, 2, seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labelled = common.write_csv(tmp / "labelled.csv", start)
        test_csv = common.write_csv(tmp / "test.csv", test)
        pool = common.write_csv(tmp / "pool.csv", [[t] for t, _ in train], header=("text",))
        gold = common.write_csv(tmp / "gold.csv", train)
        cfg = config(tmp, labelled, test_csv, seed, args)
        for r in range(args.rounds):  # one round at a time: k grows with the labelled set (its size each time)
            k = len(start) * 2 ** r
            label_loop(cfg, tmp / "loop", LoopSettings(str(pool), k=k, strategy=arm, rounds=r + 1, oracle=str(gold),
                                                       seed=seed), log=lambda m: None)
        record = json.loads((tmp / "loop" / "loop.json").read_text())
    return {"points": [[r["labelled"], r["accuracy"]] for r in record["rounds"]]}


def full_data(dataset: str, seed: int, args) -> dict:
    from graftkit.tasks.run_config import load_config
    from graftkit.train.trainer import train as train_run

    train, test = data(dataset)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = load_config(config(tmp, common.write_csv(tmp / "train.csv", train),
                                 common.write_csv(tmp / "test.csv", test), seed, args))
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": -1, "epochs": 3})})
        run = train_run(cfg, log=lambda m: None)
        return {"accuracy": json.loads(run.metrics.read_text())["test"]["accuracy"], "rows": len(train)}


def labels_to_reach(points: list[list[float]], target: float) -> float | None:
    """Labelled rows at which the curve first reaches ``target`` (linear between rounds), or None."""
    for (n0, a0), (n1, a1) in zip([[0, 0.0]] + points, points):
        if a1 >= target:
            return n1 if a1 == a0 or n0 == 0 else n0 + (target - a0) / (a1 - a0) * (n1 - n0)
    return None


def report(results: dict, dataset: str) -> str:
    ceiling = statistics.mean(r["accuracy"] for k, r in results.items() if k.startswith(f"{dataset}:full:"))
    target = 0.95 * ceiling
    lines = [f"{dataset}: full-data accuracy {ceiling:.3f}; target 95% = {target:.3f}", "",
             "| arm | labels to reach the target (per seed) | mean | × random |", "| --- | --- | --- | --- |"]
    needed = {arm: [labels_to_reach(r["points"], target) for k, r in sorted(results.items())
                    if k.startswith(f"{dataset}:") and k.endswith(f":{arm}")] for arm in ARMS}
    base = [n for n in needed["random"] if n is not None]
    for arm, ns in needed.items():
        got = [n for n in ns if n is not None]
        mean = statistics.mean(got) if got and len(got) == len(ns) else None
        ratio = f"{mean / statistics.mean(base):.2f}" if mean and base and len(base) == len(needed["random"]) else "–"
        shown = ", ".join("not reached" if n is None else f"{n:.0f}" for n in ns)
        lines.append(f"| {arm} | {shown} | {'–' if mean is None else f'{mean:.0f}'} | {ratio} |")
    return "\n".join(lines)


def plot(results: dict, dataset: str, path: Path) -> None:
    from graftkit.report.plots import curves_png

    curves = {}
    for arm in ARMS:
        runs = [r["points"] for k, r in sorted(results.items()) if k.startswith(f"{dataset}:") and k.endswith(f":{arm}")]
        if runs:
            curves[arm] = [(n, statistics.mean(run[i][1] for run in runs)) for i, (n, _) in enumerate(runs[0])]
    curves_png(curves, "labelled rows", "test accuracy", f"Active learning on {dataset} (mean over seeds)", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["fpb"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=6, help="rounds of the loop (the labelled set doubles each)")
    ap.add_argument("--steps", type=int, default=120, help="optimiser steps per training in the loop")
    args = ap.parse_args()
    results = common.Results(OUT, vars(args))
    for dataset in args.datasets:
        results.get(f"{dataset}:full:0", lambda: full_data(dataset, 0, args))
        for seed in args.seeds:
            for arm in ARMS:
                results.get(f"{dataset}:{seed}:{arm}", lambda: curve(dataset, seed, arm, args))
        plot(results.results, dataset, OUT.parent / f"active-learning-{dataset}.png")
        print(report(results.results, dataset))


if __name__ == "__main__":
    main()
