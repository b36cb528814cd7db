"""Trust benchmarks on Financial PhraseBank (AllAgree, seeded 80/20 split) with the bundled MiniLM.

    python bench/trust.py calibration --dataset fpb     # ECE before/after temperature scaling (+ robustness)
    python bench/trust.py calibration --dataset sst2 --train-rows 2000
    python bench/trust.py calibration --dataset banking77 --train-rows 0 --epochs 3 --lr 1e-4
    python bench/trust.py robustness-fgm                # the same run trained with FGM: flip rates side by side
    python bench/trust.py faithfulness --rows 100       # ERASER comprehensiveness: top-20% vs random-20% removal
    python bench/trust.py label-errors                  # 5% flipped train labels: precision/recall@k, retrain gain

Each writes bench/out/trust-<what>.json and prints the numbers BENCHMARKS.md quotes.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
WORK = OUT / "trust-runs"


def _data(args) -> tuple[Path, Path, list, list]:
    WORK.mkdir(parents=True, exist_ok=True)
    if args.dataset == "sst2":
        train, test = common.load_sst2(args.train_rows, args.seed)
    elif args.dataset == "banking77":
        train, test = common.load_banking77(args.train_rows, args.seed)
    else:
        train, test = common.fpb_split(args.seed)
    tag = args.dataset
    return (common.write_csv(WORK / f"{tag}-train.csv", train), common.write_csv(WORK / f"{tag}-test.csv", test),
            list(train), list(test))


def _cfg(name: str, train_csv: Path, test_csv: Path, args, **train_extra):
    from graftkit.tasks.run_config import config_from_dict

    return config_from_dict({
        "name": name, "output_dir": str(WORK),
        "data": {"train": str(train_csv), "test": str(test_csv), "max_length": args.max_length,
                 "split": {"validation": 0.15, "test": 0.0, "seed": args.seed}},
        "model": {"name_or_path": "bundled:minilm",
                  **({"keep_layers": list(range(args.keep_layers))} if args.keep_layers else {})},
        "train": {"epochs": args.epochs, "batch_size": 32, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None, "logging_steps": 50, **train_extra},
        "eval": {"plots": True, "save_predictions": False, "robustness_rows": args.robustness_rows},
    })


def _train(cfg):
    from graftkit.train.trainer import train

    run = train(cfg, overwrite=True, log=lambda m: print(m, flush=True))
    return run, json.loads(run.metrics.read_text())


def ece_noise_floor(run_path: Path, texts: list[str], draws: int = 1000, seed: int = 0) -> dict:
    """ECE of a perfectly calibrated model with this run's test confidences: outcomes drawn as
    Bernoulli(confidence), so |accuracy - confidence| per bin is sampling noise only (mean and 90th pct)."""
    from graftkit.evaluate.calibration import binned_ece
    from graftkit.inference.predictor import Predictor

    conf = np.array([max(p.scores.values()) for p in Predictor(run_path).predict(texts)])
    rng = np.random.default_rng(seed)
    eces = [binned_ece(conf, (rng.random(len(conf)) < conf).astype(float)) for _ in range(draws)]
    return {"mean": float(np.mean(eces)), "p90": float(np.quantile(eces, 0.9)), "rows": len(conf)}


def calibration(args) -> dict:
    train_csv, test_csv, _, test = _data(args)
    run, m = _train(_cfg(f"{args.dataset}-plain", train_csv, test_csv, args))
    cal = m["calibration"]
    out = {"dataset": args.dataset, "run": str(run.path), "temperature": cal["temperature"],
           "test_ece_noise_floor": ece_noise_floor(run.path, [t for t, _ in test]),
           "test_accuracy": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
           "validation": {k: cal["validation"][k] for k in ("before", "after")},
           "test": {k: cal["test"][k] for k in ("before", "after")}, "robustness": m.get("robustness")}
    return out


def robustness_fgm(args) -> dict:
    train_csv, test_csv, _, _ = _data(args)
    run, m = _train(_cfg(f"{args.dataset}-fgm", train_csv, test_csv, args,
                         adversarial={"method": "fgm", "epsilon": 1.0}))
    plain = json.loads((WORK / f"{args.dataset}-plain" / "metrics.json").read_text())
    return {"plain": plain.get("robustness"), "fgm": m.get("robustness"),
            "plain_test_accuracy": plain["test"]["accuracy"], "fgm_test_accuracy": m["test"]["accuracy"],
            "fgm_calibration_test": m["calibration"]["test"]}


def faithfulness(args) -> dict:
    """Comprehensiveness (DeYoung et al. 2020): drop of the predicted class's probability when the top 20%
    of words by attribution are removed, against removing 20% of the words at random (same count)."""
    from graftkit.evaluate.explain import Explainer

    run_dir = WORK / f"{args.dataset}-plain"
    _, _, _, test = _data(args)
    rows = random.Random(args.seed).sample(test, min(args.rows, len(test)))
    ex = Explainer(run_dir, steps=args.steps)
    pred = ex.predictor
    rng = random.Random(args.seed + 1)
    top_drops, rand_drops, deltas, converged = [], [], [], 0
    for text, _ in rows:
        r = ex.explain(text)
        words = [w["text"] for w in r["words"]]
        k = max(1, round(0.2 * len(words)))
        order = np.argsort([-w["attribution"] for w in r["words"]])
        top = set(order[:k].tolist())
        rand = set(rng.sample(range(len(words)), k))
        keep = lambda drop: " ".join(w for i, w in enumerate(words) if i not in drop) or "."  # noqa: E731
        p0, p_top, p_rand = (p.scores[r["target"]] for p in pred.predict([text, keep(top), keep(rand)]))
        top_drops.append(p0 - p_top)
        rand_drops.append(p0 - p_rand)
        deltas.append(abs(r["delta"]) / max(abs(r["score"] - r["baseline_score"]), 1e-6))
        converged += r["converged"]
    top_m, rand_m = float(np.mean(top_drops)), float(np.mean(rand_drops))
    return {"rows": len(rows), "top20_drop": top_m, "random20_drop": rand_m,
            "ratio": top_m / rand_m if rand_m > 0 else None, "median_relative_delta": float(np.median(deltas)),
            "converged_share": converged / len(rows), "steps_start": args.steps}


def label_errors(args) -> dict:
    from graftkit.train.label_errors import find_label_errors

    _, test_csv, train, _ = _data(args)
    rng = random.Random(args.seed)
    if args.subset:
        train = rng.sample(train, args.subset)
    labels = sorted({y for _, y in train})
    flipped = set(rng.sample(range(len(train)), round(0.05 * len(train))))
    noisy = [(t, rng.choice([x for x in labels if x != y]) if i in flipped else y) for i, (t, y) in enumerate(train)]
    noisy_csv = common.write_csv(WORK / f"{args.dataset}-noisy.csv", noisy)
    cfg = _cfg(f"{args.dataset}-noisy", noisy_csv, test_csv, args)
    search_cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={
        "test": None, "split": cfg.data.split.model_copy(update={"validation": 0.0, "test": 0.0})})})
    find_label_errors(search_cfg, folds=args.folds, out_dir=WORK / "label-errors",
                      train_overrides={"epochs": args.fold_epochs}, log=lambda m: print(m, flush=True))
    import csv

    with open(WORK / "label-errors" / "label_issues.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    planted = {i + 2 for i in flipped}  # csv line of data row i (header is line 1)
    k = len(planted)
    top_k = {int(r["line"]) for r in table[:k]}
    flagged = {int(r["line"]) for r in table}
    out = {"rows": len(train), "flipped": k, "flagged": len(table),
           "precision_at_k": len(top_k & planted) / k, "recall_at_k": len(top_k & planted) / k,
           "precision_flagged": len(flagged & planted) / max(len(flagged), 1),
           "recall_flagged": len(flagged & planted) / k}
    if args.no_retrain:
        return out
    # retrain: noisy data as is vs the flagged rows removed (same config, same seed)
    _, noisy_m = _train(cfg)
    cleaned = [row for i, row in enumerate(noisy) if i + 2 not in flagged]
    clean_csv = common.write_csv(WORK / f"{args.dataset}-cleaned.csv", cleaned)
    _, clean_m = _train(_cfg(f"{args.dataset}-cleaned", clean_csv, test_csv, args))
    out.update({"noisy_test_accuracy": noisy_m["test"]["accuracy"],
                "cleaned_test_accuracy": clean_m["test"]["accuracy"], "removed_rows": len(table)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["calibration", "robustness-fgm", "faithfulness", "label-errors"])
    ap.add_argument("--dataset", choices=["fpb", "sst2", "banking77"], default="fpb")
    ap.add_argument("--train-rows", type=int, default=2000, help="sst2 / banking77: training rows sampled (banking77: 0 = all)")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--robustness-rows", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=100, help="faithfulness: test sentences explained")
    ap.add_argument("--steps", type=int, default=50, help="faithfulness: IG steps to start with")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--fold-epochs", type=float, default=1)
    ap.add_argument("--keep-layers", type=int, default=0, help="keep only the first N of MiniLM's 6 layers "
                    "(faster on a busy CPU); 0 = all")
    ap.add_argument("--subset", type=int, default=0, help="label-errors: sample this many training rows")
    ap.add_argument("--no-retrain", action="store_true", help="label-errors: skip the noisy/cleaned retraining")
    args = ap.parse_args()
    result = globals()[args.what.replace("-", "_")](args)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"trust-{args.what}-{args.dataset}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
