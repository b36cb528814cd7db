"""Distillation on Financial PhraseBank: a MiniLM teacher (an ensemble of full runs, or one run) vs
the same MiniLM cut to 3 layers (``model.keep_layers: [0, 2, 4]``) trained with and without KD.

Same rows and the same steps for both students; every number comes from the run folders
(``metrics.json``: test accuracy; ``distillation`` section: throughput measured by
``graftkit.train.distill.distillation_report`` on the test split, teacher and student in one process).

Data: ../shared/data/financial_phrasebank/Sentences_AllAgree.txt, split 80/20 stratified with
seed 42 (the split of bench/peft_compare.py). Run from the repository root:

    python bench/distill.py --out bench/out/distill.json > bench/out/distill.log 2>&1
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fpb_split, write_csv  # noqa: E402

from graftkit.config import EvalConfig  # noqa: E402
from graftkit.io import read_json, write_json  # noqa: E402
from graftkit.tasks.run_config import config_from_dict  # noqa: E402
from graftkit.train.distill import distillation_report  # noqa: E402
from graftkit.train.ensemble import build_ensemble  # noqa: E402
from graftkit.train.trainer import train  # noqa: E402


def tree(name: str, work: Path, args, seed: int, **extra) -> dict:
    t = {"name": name, "output_dir": str(work / "runs"),
         "data": {"train": str(work / "train.csv"), "test": str(work / "test.csv"), "max_length": 96,
                  "split": {"validation": 0.0, "test": 0.0}},
         "model": {"name_or_path": "bundled:minilm"},
         "train": {"epochs": args.epochs, "batch_size": 16, "learning_rate": args.lr, "seed": seed, "report_to": [],
                   "early_stopping": None, "logging_steps": 20, "save_total_limit": 1},
         "eval": {k: v for k, v in {"plots": False, "save_predictions": False, "robustness_rows": 0}.items()
                  if k in EvalConfig.model_fields}}  # the same lean evaluation for every run
    for section, values in extra.items():
        t[section].update(values)
    return t


def timed_train(t: dict) -> tuple[Path, float]:
    t0 = time.perf_counter()
    run = train(config_from_dict(t, t["name"]), overwrite=True, log=lambda m: print(f"[{t['name']}] {m}", flush=True))
    return run.path, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=3, help="teacher ensemble size (1 = a single run)")
    ap.add_argument("--train-rows", type=int, default=0, help="training sentences sampled (0 = all 1,811)")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--student-epochs", type=float, default=None, help="default: --epochs")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--keep-layers", default="0,2,4")
    ap.add_argument("--out", default="bench/out/distill.json")
    args = ap.parse_args(argv)
    keep = [int(x) for x in args.keep_layers.split(",")]
    result: dict = {"args": vars(args), "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_rows, test_rows = fpb_split()
        if args.train_rows:  # a seeded subset, so that the run fits a small shared machine
            train_rows = random.Random(42).sample(train_rows, args.train_rows)
        write_csv(work / "train.csv", train_rows)
        write_csv(work / "test.csv", test_rows)
        members = []
        for i in range(args.members):
            path, seconds = timed_train(tree(f"teacher-{i}", work, args, seed=42 + i))
            members.append(path)
            result["rows"][f"teacher member {i}"] = {"accuracy": read_json(path / "metrics.json")["test"]["accuracy"],
                                                   "train_s": round(seconds, 1)}
        teacher = members[0]
        if len(members) > 1:
            teacher = work / "runs" / "teacher"
            ens = build_ensemble(members, teacher, overwrite=True, log=print)
            result["rows"]["teacher ensemble"] = {"accuracy": ens["test"]["accuracy"]}
        student_epochs = args.student_epochs or args.epochs
        arms = {"student 3-layer, no KD": {},
                "student 3-layer, KD": {"distill": {"teacher": str(teacher), "alpha": args.alpha,
                                                    "temperature": args.temperature}}}
        for name, distill in arms.items():
            t = tree(name.replace(" ", "_").replace(",", ""), work, args, seed=42,
                     model={"keep_layers": keep}, train={"epochs": student_epochs, **distill})
            path, seconds = timed_train(t)
            metrics = read_json(path / "metrics.json")
            report = metrics.get("distillation") or distillation_report(
                path, str(teacher), _test_examples(path), "accuracy", log=print)
            result["rows"][name] = {"accuracy": metrics["test"]["accuracy"], "train_s": round(seconds, 1),
                                    "teacher_accuracy": report["teacher_scores"]["accuracy"],
                                    "retention_accuracy": metrics["test"]["accuracy"] /
                                    report["teacher_scores"]["accuracy"],
                                    "student_per_second": report["student_per_second"],
                                    "teacher_per_second": report["teacher_per_second"],
                                    "speed_up": report["speed_up"], "size_ratio": report["size_ratio"]}
            print(json.dumps({name: result["rows"][name]}), flush=True)
            write_json(Path(args.out), result)
    write_json(Path(args.out), result)
    return 0


def _test_examples(run_dir: Path):
    from graftkit.data.dataset import read_examples
    from graftkit.inference.predictor import Predictor

    p = Predictor(run_dir)
    return read_examples(p.cfg.data.test, p.cfg.data, p.task.parse_label)[0]


if __name__ == "__main__":
    sys.exit(main())
