"""Chinese on the bundled (English, uncased) MiniLM: today's default vs vocabulary extension vs
vocabulary extension + task-adaptive pre-training, on the same rows with the same steps.

Arms (each a plain ``graftkit train`` of the same config, only these keys differ):

* ``default``:     ``model.extend_vocab: off``
* ``vocab``:       ``model.extend_vocab: auto``
* ``vocab_tapt``:  ``model.extend_vocab: auto`` and a ``pretrain:`` section (masked-LM with whole-word
  masking on the training split's text, then fine-tuning from it)
* ``vocab_fast``, ``vocab_tapt_fast``: the same two with ``model.extend_vocab.learning_rate_scale``
  (``--new-rows-scale``): the added tokens' embedding rows take that many times longer steps

Datasets: ChnSentiCorp-Htl (seeded stratified 80/20 split, accuracy), CLUENER2020 (train → the
official dev set, entity F1), Weibo NER (train → test, entity F1). ``--*-train N`` samples N
training rows (seeded) so that a run fits a small shared CPU machine. Run from the repository root:

    python bench/chinese_adapt.py --out bench/out/chinese_adapt.json > bench/out/chinese_adapt.log 2>&1
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from graftkit.config import EvalConfig  # noqa: E402
from graftkit.io import read_json, write_json  # noqa: E402
from graftkit.tasks.run_config import config_from_dict  # noqa: E402
from graftkit.train.pretrain import train_with_pretrain  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
#: the same lean evaluation for every arm: no plots, no robustness report (it re-predicts perturbed copies)
QUIET_EVAL = {"plots": False, "save_predictions": False, "robustness_rows": 0}
#: arm -> (model.extend_vocab.source, with a pretrain: stage, scale the added rows' steps by --new-rows-scale)
ARMS = {"default": ("off", False, False), "vocab": ("auto", False, False), "vocab_tapt": ("auto", True, False),
        "vocab_fast": ("auto", False, True), "vocab_tapt_fast": ("auto", True, True)}


def chnsenti(work: Path, n_train: int, seed: int, n_test: int = 0, max_length: int = 160) -> tuple[dict, dict, str]:
    from sklearn.model_selection import train_test_split

    with open(DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", encoding="utf-8", newline="") as fh:
        rows = [(r["review"], r["label"]) for r in csv.DictReader(fh) if r["review"].strip()]
    train, test = train_test_split(rows, test_size=0.2, random_state=seed, stratify=[r[1] for r in rows])
    if n_train:
        train = random.Random(seed).sample(train, n_train)
    if n_test:
        test = random.Random(seed).sample(test, n_test)
    for name, part in (("train", train), ("test", test)):
        with open(work / f"chnsenti.{name}.csv", "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([("text", "label"), *part])
    data = {"train": str(work / "chnsenti.train.csv"), "test": str(work / "chnsenti.test.csv"), "max_length": max_length,
            "split": {"validation": 0.1, "test": 0.0, "seed": seed}}
    return data, {"type": "classification"}, "accuracy"


def cluener(work: Path, n_train: int, seed: int) -> tuple[dict, dict, str]:
    lines = (DATA / "cluener2020" / "train.json").read_text(encoding="utf-8").splitlines()
    if n_train:
        lines = random.Random(seed).sample(lines, n_train)
    (work / "cluener.train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"train": str(work / "cluener.train.json"), "test": str(DATA / "cluener2020" / "dev.json"),
            "format": "cluener", "max_length": 128,
            "split": {"validation": 0.05, "test": 0.0, "seed": seed}}
    return data, {"type": "ner", "crf": True, "repair_tags": True}, "f1"


def weibo(work: Path, n_train: int, seed: int) -> tuple[dict, dict, str]:
    sentences = [s for s in (DATA / "weibo_ner" / "weiboNER_2nd_conll.train").read_text(encoding="utf-8")
                 .split("\n\n") if s.strip()]
    if n_train:
        sentences = random.Random(seed).sample(sentences, n_train)
    (work / "weibo.train").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    data = {"train": str(work / "weibo.train"), "validation": str(DATA / "weibo_ner" / "weiboNER_2nd_conll.dev"),
            "test": str(DATA / "weibo_ner" / "weiboNER_2nd_conll.test"), "format": "char_conll",
            "max_length": 128}
    return data, {"type": "ner", "crf": True, "strip_segment_digit": True, "repair_tags": True}, "f1"


DATASETS = {"chnsenti": chnsenti, "cluener": cluener, "weibo": weibo}


def run_arm(name: str, arm: str, data: dict, task: dict, metric: str, args, out_dir: Path) -> dict:
    extend, tapt, fast = ARMS[arm]
    scale = args.new_rows_scale if fast else 1.0
    tree = {"name": f"{name}-{arm}", "output_dir": str(out_dir), "data": data, "task": task,
            "model": {"name_or_path": "bundled:minilm",
                      "extend_vocab": {"source": extend, "words": False, "learning_rate_scale": scale}},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
                      "seed": args.seed, "report_to": [], "early_stopping": None, "logging_steps": 50,
                      "head_learning_rate": args.head_lr},
            "eval": {k: v for k, v in QUIET_EVAL.items() if k in EvalConfig.model_fields}}
    if tapt:
        tree["pretrain"] = {"epochs": args.tapt_epochs, "learning_rate": args.tapt_lr, "batch_size": args.batch_size}
    cfg = config_from_dict(tree, f"{name}-{arm}")
    t0 = time.perf_counter()
    run = train_with_pretrain(cfg, overwrite=True, log=lambda m: print(f"[{name}/{arm}] {m}", flush=True))
    seconds = time.perf_counter() - t0
    setup = read_json(run.path / "training_setup.json").get("vocab", {})
    metrics = read_json(run.metrics)
    row = {"dataset": name, "arm": arm, "metric": metric, "test": metrics["test"][metric],
           "validation": metrics.get("validation", {}).get(metric), "train_rows": metrics["data"]["train"],
           "test_rows": metrics["data"]["test"], "unk_rate_before": setup.get("unk_rate_before"),
           "unk_rate_after": setup.get("unk_rate_after"), "tokens_added": setup.get("tokens_added"),
           "wall_seconds": round(seconds, 1), "epochs": args.epochs, "new_rows_scale": scale,
           "lr": args.lr, "head_lr": args.head_lr}
    if tapt:
        pre = read_json(out_dir / f"{name}-{arm}-pretrain" / "metrics.json")
        row["tapt_validation_perplexity"] = pre.get("validation", {}).get("perplexity")
        row["tapt_validation_masked_accuracy"] = pre.get("validation", {}).get("masked_accuracy")
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="chnsenti,weibo,cluener")
    ap.add_argument("--arms", default="default,vocab,vocab_tapt")
    ap.add_argument("--chnsenti-train", type=int, default=2000, help="training reviews sampled (0 = all 6,212)")
    ap.add_argument("--chnsenti-test", type=int, default=0, help="test reviews sampled from the 20%% split (0 = all)")
    ap.add_argument("--chnsenti-max-length", type=int, default=160, help="tokens kept per review")
    ap.add_argument("--cluener-train", type=int, default=3000, help="training sentences sampled (0 = all 10,748)")
    ap.add_argument("--weibo-train", type=int, default=0, help="training messages sampled (0 = all 1,350)")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--tapt-epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=None,
                    help="train.head_learning_rate (the classifier / CRF head); default: --lr")
    ap.add_argument("--tapt-lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--new-rows-scale", type=float, default=20.0,
                    help="*_fast arms: model.extend_vocab.learning_rate_scale (the added rows' step multiplier)")
    ap.add_argument("--out", default="bench/out/chinese_adapt.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = read_json(out)["rows"] if out.is_file() else []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.datasets.split(","):
            extra = {"n_test": args.chnsenti_test, "max_length": args.chnsenti_max_length} if name == "chnsenti" else {}
            data, task, metric = DATASETS[name](work, getattr(args, f"{name}_train"), args.seed, **extra)
            for arm in args.arms.split(","):
                row = run_arm(name, arm, data, task, metric, args, work / "runs")
                print(json.dumps(row, ensure_ascii=False), flush=True)
                rows = [r for r in rows if (r["dataset"], r["arm"], r.get("epochs"), r.get("head_lr"))
                        != (name, arm, row["epochs"], row["head_lr"])] + [row]
                write_json(out, {"args": vars(args), "rows": rows})  # after every arm: a kill keeps the rest
    return 0


if __name__ == "__main__":
    sys.exit(main())
