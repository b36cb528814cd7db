"""Self-training (train.self_training) against the same labelled rows alone: 5% of the training rows labelled,
the other 95% given as unlabelled text.

Financial PhraseBank (AllAgree, seeded 80/20 split; scored on the 20%) and Banking77 (scored on its full test
set). Per seed the labelled 5% is drawn stratified; a fifth of it is the validation split both arms select their
checkpoint on (self-training also sets its thresholds and stops on it). Both arms train the bundled model with
the same settings; the self-training arm's round 0 is the labelled-only model, so the gain is what the rounds add.

    python bench/self_training.py --datasets fpb banking77 --seeds 0 1 2

Results land in bench/out/self-training.json as each arm finishes (a stopped run picks up where it was).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "self-training.json"
ARMS = ("labelled_only", "self_training")


def split(dataset: str, seed: int, share: float):
    """(labelled train, validation, unlabelled texts, test) for one seed."""
    if dataset == "fpb":
        train, test = common.fpb_split(42)
    else:
        train, test = common.load_banking77(0, 42)
    labels = [y for _, y in train]
    rest, labelled = train_test_split(train, test_size=share, random_state=seed, stratify=labels)
    fit, validation = train_test_split(labelled, test_size=0.2, random_state=seed,
                                       stratify=[y for _, y in labelled] if dataset == "fpb" else None)
    return fit, validation, [t for t, _ in rest], test


def run_arm(dataset: str, seed: int, arm: str, args) -> dict:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    fit, validation, unlabelled, test = split(dataset, seed, args.share)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "pool.txt").write_text("\n".join(t.replace("\n", " ") for t in unlabelled) + "\n", encoding="utf-8")
        steps = {"epochs": args.epochs, "batch_size": 16, "learning_rate": args.lr, "warmup": 0.1, "seed": seed,
                 "report_to": [], "logging_steps": 50, "early_stopping": None}
        if arm == "self_training":
            steps["self_training"] = {"unlabelled": str(tmp / "pool.txt"), "rounds": args.rounds}
        cfg = config_from_dict({
            "name": arm, "output_dir": str(tmp / "runs"), "model": {"name_or_path": "bundled:minilm"},
            "data": {"train": str(common.write_csv(tmp / "train.csv", fit)),
                     "validation": str(common.write_csv(tmp / "val.csv", validation)),
                     "test": str(common.write_csv(tmp / "test.csv", test)), "max_length": 64},
            "train": steps, "eval": {"plots": False, "save_predictions": False, "robustness_rows": 0}})
        start = time.perf_counter()
        run = train(cfg, log=lambda s: None)
        metrics = json.loads(run.metrics.read_text())
    result = {"accuracy": metrics["test"]["accuracy"], "macro_f1": metrics["test"]["macro_f1"],
              "labelled_rows": len(fit) + len(validation), "minutes": round((time.perf_counter() - start) / 60, 1)}
    if arm == "self_training":
        record = metrics["self_training"]
        result.update(chosen_round=record["chosen_round"], stopped=record["stopped"],
                      added=[r["added"] for r in record["rounds"]])
    return result


def table(results: dict) -> str:
    lines = ["| data set | labelled rows | metric | labelled only | self-training | gain (points) | chosen rounds | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for dataset in sorted({k.split(":")[0] for k in results}):
        arms = {arm: [r for k, r in sorted(results.items()) if k.startswith(f"{dataset}:") and k.endswith(arm)]
                for arm in ARMS}
        done = min(len(arms["labelled_only"]), len(arms["self_training"]))  # seeds with both arms
        for metric in ("accuracy", "macro_f1"):
            base, st = ([r[metric] for r in arms[a][:done]] for a in ARMS)
            gain = f"{100 * (statistics.mean(st) - statistics.mean(base)):+.1f}" if done else "–"
            rows = arms["labelled_only"][0]["labelled_rows"] if done else "–"
            lines.append(f"| {dataset} | {rows} | {metric} | {common.mean_sd(base)} | {common.mean_sd(st)} | {gain} | "
                         f"{[r['chosen_round'] for r in arms['self_training'][:done]]} | {done} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["fpb", "banking77"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--share", type=float, default=0.05, help="labelled share of the training rows")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    results = common.Results(OUT, vars(args))
    for dataset in args.datasets:
        for seed in args.seeds:
            for arm in ARMS:
                results.get(f"{dataset}:{seed}:{arm}", lambda: run_arm(dataset, seed, arm, args))
    print(table(results.results))


if __name__ == "__main__":
    main()
