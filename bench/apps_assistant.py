"""Assistant out-of-scope benchmark: Banking77 with held-out intents as out-of-scope (Zhang et al. 2021 protocol),
the assistant end to end before (today's rule) and after (the intent run's out-of-scope detector).

A seeded 25% of the 77 intents is held out: those questions appear only in validation and test, as
out-of-scope. One intent run (bundled MiniLM, ``task.out_of_scope``: its detector and threshold are chosen on
the validation file) trains on the other intents; the FAQ index holds the in-scope training questions under a
bi-encoder run (MiniLM, `--emb-steps` steps of training). The same weights serve every arm:

- before: a copy of the run without its detector files, so the assistant decides as it did before detectors:
  intent confidence + FAQ similarity, both thresholds picked by `graftkit assistant calibrate` on validation;
- after: the detector at the run's own threshold; the detector threshold calibrated; the detector threshold
  with an FAQ-similarity threshold where it helps on validation.

On the test rows each arm reports handoff rate, out-of-scope recall and precision, and in-scope accuracy
(correct intent and answered). Scaled by --per-intent (training rows per intent) and --test-rows.

    python bench/apps_assistant.py --per-intent 20 --epochs 2 --test-rows 1000
    python bench/apps_assistant.py --smoke            # minutes on a laptop: checks it runs, numbers mean nothing

Writes --out (default bench/out/apps-assistant.json) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import csv
import random
import shutil
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


def train_runs(args, tmp: Path, train_rows, val):
    """(the intent run with a detector, the embedding run with the FAQ indexed as 'faq')."""
    from graftkit.inference.retrieval.index import build_index
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    train_csv = common.write_csv(tmp / "train.csv", train_rows)
    val_csv = common.write_csv(tmp / "val.csv", val)
    intent = train(config_from_dict({
        "name": "intent", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "validation": str(val_csv), "max_length": 64, "split": {"test": 0.0}},
        "model": {"name_or_path": "bundled:minilm"},
        "task": {"type": "classification", "out_of_scope": {"label": "oos", "target_in_scope_accuracy": args.target}},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None}, "eval": {"plots": False, "robustness_rows": 0}}),
        log=lambda m: None)
    emb = train(config_from_dict({
        "name": "faq", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 64, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": "bundled:minilm"}, "task": {"type": "embedding"},
        "train": {"max_steps": args.emb_steps, "batch_size": 16, "learning_rate": 2e-5, "seed": args.seed,
                  "report_to": []}}), log=lambda m: None)
    corpus = tmp / "faq.csv"
    with open(corpus, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "intent"])
        w.writerows([(f"q{i}", t, lab) for i, (t, lab) in enumerate(train_rows)])
    build_index(emb.path, corpus, name="faq")
    return intent.path, emb.path


def without_detector(run: Path) -> Path:
    """A copy of ``run`` without its detector files: the same weights, decided as before detectors existed."""
    copy = run.parent / f"{run.name}-no-detector"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("out_of_scope.json", "out_of_scope.safetensors"))
    return copy


# arm -> (intent run: with or without its detector, calibrate? (with FAQ similarity?))
ARMS = {"before: confidence + FAQ similarity": (False, (True, True)),
        "after: detector, the run's threshold": (True, None),
        "after: detector, calibrated": (True, (True, False)),
        "after: detector + FAQ similarity where it helps": (True, (True, True))}


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
    p.add_argument("--smoke", action="store_true", help="tiny sizes (2 rows per intent, 60 val and test rows, "
                   "1 epoch): checks the script end to end, its numbers mean nothing")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "apps-assistant.json")
    args = p.parse_args()
    if args.smoke:
        args.per_intent, args.val_rows, args.test_rows, args.epochs = 2, 60, 60, 1.0
    from graftkit.apps.assistant import Assistant
    from graftkit.apps.assistant.calibrate import calibrate, evaluate
    from graftkit.apps.assistant.config import Thresholds, assistant_config_from_dict

    tmp = Path(tempfile.mkdtemp(prefix="bench-assistant-"))
    train_rows, val, test, held = splits(args)
    t0 = time.perf_counter()
    intent, emb = train_runs(args, tmp, train_rows, val)
    runs = {True: intent, False: without_detector(intent)}
    train_s = time.perf_counter() - t0
    val_texts, val_labels = [t for t, _ in val], [lab for _, lab in val]
    test_texts, test_labels = [t for t, _ in test], [lab for _, lab in test]
    rows = {}
    for arm, (detector, tune) in ARMS.items():
        cfg = assistant_config_from_dict({"intent_run": str(runs[detector]), "retrieval_run": str(emb),
                                          "index": "faq", "store": f"sqlite:///{tmp / 'a.db'}"})
        bot = Assistant.from_config(cfg)
        chosen = None
        if tune:
            chosen = calibrate(bot, val_texts, val_labels, args.target, use_similarity=tune[1])
            bot.cfg.thresholds = Thresholds(**chosen["thresholds"])
        rows[arm] = {"thresholds": bot.cfg.thresholds.model_dump(), "scope_threshold": bot.rule.threshold,
                     "validation": chosen or evaluate(bot, val_texts, val_labels),
                     "test": evaluate(bot, test_texts, test_labels)}
        bot.close()
    out = {"held_out_intents": sorted(held), "train_rows": len(train_rows), "val_rows": len(val),
           "test_rows": len(test), "train_seconds": round(train_s, 1), "args": vars(args), "arms": rows}
    common.write_json(args.out, out)
    print(f"train rows {len(train_rows)} ({args.per_intent}/intent, {77 - len(held)} intents), val {len(val)}, "
          f"test {len(test)}; held-out intents {len(held)}; trained in {train_s:.0f} s")
    print("| assistant | decided by | scope threshold | FAQ similarity | val in-scope acc | test handoff rate | "
          "test OOS recall | test OOS precision | test in-scope acc |\n|---|---|---|---|---|---|---|---|---|")
    for arm, r in rows.items():
        t, v = r["test"], r["validation"]
        print(f"| {arm} | {t['decided_by']} | {r['scope_threshold']:.4g} | {r['thresholds']['retrieval_similarity']} | "
              f"{v['in_scope_accuracy']} | {t['handoff_rate']} | {t['oos_recall']} | {t['oos_precision']} | "
              f"{t['in_scope_accuracy']} |")


if __name__ == "__main__":
    main()
