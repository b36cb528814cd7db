"""Assistant out-of-scope benchmark: Banking77 with held-out intents as out-of-scope (Zhang et al. 2021 protocol).

A seeded 25% of the 77 intents is held out: those questions appear only in validation and test, as
out-of-scope. The intent run (bundled MiniLM) trains on the other intents; the FAQ index holds the
in-scope training questions under a bi-encoder run (MiniLM, `--emb-steps` steps of training); `graftkit
assistant calibrate` picks both thresholds on validation for the target in-scope accuracy; the table
reports test in-scope accuracy and out-of-scope recall at those thresholds, for confidence only and for
confidence + FAQ similarity. Scaled by --per-intent (training rows per intent) and --test-rows.

    python bench/apps_assistant.py --per-intent 20 --epochs 2 --test-rows 1000

Writes --out (default bench/out/apps-assistant.json) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

REPO = Path(__file__).resolve().parents[1]


def read(name: str) -> list[tuple[str, str]]:
    with open(common.SHARED / "banking77" / name, encoding="utf-8", newline="") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def splits(args):
    rng = random.Random(args.seed)
    train_all, test_all = read("train.csv"), read("test.csv")
    intents = sorted({lab for _, lab in train_all})
    held = set(rng.sample(intents, round(0.25 * len(intents))))
    rng.shuffle(train_all)
    train, val, seen = [], [], {}
    for text, lab in train_all:
        if lab in held:
            val.append((text, "oos")) if len(val) < args.val_rows else None
            continue
        seen[lab] = seen.get(lab, 0) + 1
        (train if seen[lab] <= args.per_intent else val).append((text, lab))
    val = rng.sample(val, min(len(val), args.val_rows))
    test = [(t, "oos" if lab in held else lab) for t, lab in test_all]
    test = rng.sample(test, min(len(test), args.test_rows))
    return train, val, test, held


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-intent", type=int, default=20)
    p.add_argument("--val-rows", type=int, default=800)
    p.add_argument("--test-rows", type=int, default=1000)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--emb-steps", type=int, default=1)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "apps-assistant.json")
    args = p.parse_args()
    from graftkit.apps.assistant import Assistant
    from graftkit.apps.assistant.calibrate import calibrate, evaluate
    from graftkit.apps.assistant.config import Thresholds, assistant_config_from_dict
    from graftkit.inference.retrieval.index import build_index
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    tmp = Path(tempfile.mkdtemp(prefix="bench-assistant-"))
    train_rows, val, test, held = splits(args)
    train_csv = common.write_csv(tmp / "train.csv", train_rows)
    t0 = time.perf_counter()
    intent = train(config_from_dict({
        "name": "intent", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 64, "split": {"validation": 0.05, "test": 0.05}},
        "model": {"name_or_path": "bundled:minilm"}, "task": {"type": "classification"},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None}, "eval": {"plots": False}}), log=lambda m: None)
    emb_cfg = config_from_dict({
        "name": "faq", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 64, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": "bundled:minilm"}, "task": {"type": "embedding"},
        "train": {"max_steps": args.emb_steps, "batch_size": 16, "learning_rate": 2e-5, "seed": args.seed,
                  "report_to": []}})
    emb = train(emb_cfg, log=lambda m: None)
    corpus = tmp / "faq.csv"
    with open(corpus, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "intent"])
        w.writerows([(f"q{i}", t, lab) for i, (t, lab) in enumerate(train_rows)])
    build_index(emb.path, corpus, name="faq")
    train_s = time.perf_counter() - t0
    rows = {}
    for arm, sim in (("intent confidence", False), ("confidence + FAQ similarity", True)):
        cfg = assistant_config_from_dict({"intent_run": str(intent.path), "retrieval_run": str(emb.path),
                                          "index": "faq", "store": f"sqlite:///{tmp / 'a.db'}"})
        bot = Assistant.from_config(cfg)
        chosen = calibrate(bot, [t for t, _ in val], [lab for _, lab in val], args.target, use_similarity=sim)
        bot.cfg.thresholds = Thresholds(**chosen["thresholds"])
        rows[arm] = {"validation": chosen, "test": evaluate(bot, [t for t, _ in test], [lab for _, lab in test])}
        bot.close()
    out = {"held_out_intents": sorted(held), "train_rows": len(train_rows), "val_rows": len(val),
           "test_rows": len(test), "train_seconds": round(train_s, 1), "args": vars(args), "arms": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(f"train rows {len(train_rows)} ({args.per_intent}/intent, {77 - len(held)} intents), val {len(val)}, "
          f"test {len(test)}; held-out intents {len(held)}")
    print("| OOS signals | thresholds (conf, sim) | val in-scope acc | test in-scope acc | test OOS recall | "
          "test OOS precision | test handoff rate |\n|---|---|---|---|---|---|---|")
    for arm, r in rows.items():
        th, t = r["validation"]["thresholds"], r["test"]
        print(f"| {arm} | {th['intent_confidence']}, {th['retrieval_similarity']} | "
              f"{r['validation']['in_scope_accuracy']} | {t['in_scope_accuracy']} | {t['oos_recall']} | "
              f"{t['oos_precision']} | {t['handoff_rate']} |")


if __name__ == "__main__":
    main()
