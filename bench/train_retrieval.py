"""Benchmark: Banking77 intent accuracy and question->question retrieval, bundled MiniLM.

    flock /tmp/graftkit-bench.lock python bench/train_retrieval.py > bench/out/train_retrieval.log 2>&1

1. Intent classifier: ``configs/banking77-intent.yaml`` (train -> official test), accuracy / macro-F1
   from the run's metrics.json.
2. Retrieval: queries = Banking77 test questions, corpus = all training questions, relevant = same
   intent; recall@1 (= hit@1 here: the nearest training question has the query's intent) and MRR@10 of
   (a) the untuned bundled MiniLM and (b) the bi-encoder fine-tuned by ``configs/banking77-retrieval.yaml``,
   both scored by sentence-transformers' InformationRetrievalEvaluator on the same splits.
Results (and the settings used) go to bench/out/train_retrieval.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intent-epochs", type=float, default=None, help="override train.epochs of the intent run")
    ap.add_argument("--retrieval-epochs", type=float, default=None, help="override train.epochs of the bi-encoder")
    ap.add_argument("--intent-max-steps", type=int, default=None, help="cap the intent run's optimiser steps")
    ap.add_argument("--retrieval-max-steps", type=int, default=None, help="cap the bi-encoder's optimiser steps")
    ap.add_argument("--intent-lr", type=float, default=None, help="override the intent run's learning rate")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "runs"))
    ap.add_argument("--skip-intent", action="store_true")
    args = ap.parse_args()
    os.chdir(REPO)  # configs name ../shared/data relative to the repository root

    from graftkit.tasks.run_config import load_config
    from graftkit.data.dataset import load_splits
    from graftkit.tasks.common.bi_encoder import load_model
    from graftkit.tasks.embedding import EmbeddingTask, metrics, preprocess
    from graftkit.train.trainer import train

    def cfg_for(name: str, epochs: float | None, max_steps: int | None, lr: float | None = None):
        sets = [f"output_dir={args.out}", "train.report_to=[]"]
        for key, value in (("epochs", epochs), ("max_steps", max_steps), ("learning_rate", lr)):
            if value is not None:
                sets.append(f"train.{key}={value}")
        return load_config(REPO / "configs" / f"{name}.yaml", sets)

    results: dict = {}
    log = lambda m: print(m, flush=True)  # noqa: E731
    if not args.skip_intent:
        cfg = cfg_for("banking77-intent", args.intent_epochs, args.intent_max_steps, args.intent_lr)
        t0 = time.perf_counter()
        run = train(cfg, overwrite=True, log=log)
        m = json.loads(run.metrics.read_text())
        results["intent"] = {"epochs": cfg.train.epochs, "max_steps": cfg.train.max_steps,
                             "learning_rate": cfg.train.learning_rate, "train_rows": m["data"]["train"],
                             "test_rows": m["data"]["test"], "accuracy": m["test"]["accuracy"],
                             "macro_f1": m["test"]["macro_f1"], "seconds": round(time.perf_counter() - t0, 1)}
        log(f"intent: {results['intent']}")

    cfg = cfg_for("banking77-retrieval", args.retrieval_epochs, args.retrieval_max_steps)
    task = EmbeddingTask(cfg.task, cfg.data)
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read)
    data = preprocess.retrieval_set(splits.test, splits.train, label_mode=True)
    t0 = time.perf_counter()
    base = metrics.retrieval_scores(load_model(cfg.model, cfg.data.max_length), data, "untuned")
    results["retrieval_untuned"] = {**base, "seconds": round(time.perf_counter() - t0, 1)}
    log(f"untuned: {results['retrieval_untuned']}")
    t0 = time.perf_counter()
    run = train(cfg, overwrite=True, log=log)
    tuned = json.loads(run.metrics.read_text())["test"]
    results["retrieval_tuned"] = {**tuned, "epochs": cfg.train.epochs, "max_steps": cfg.train.max_steps,
                                 "train_pairs": json.loads(run.metrics.read_text())["data"]["train_pairs"], "seconds": round(time.perf_counter() - t0, 1)}
    log(f"tuned: {results['retrieval_tuned']}")
    out = REPO / "bench" / "out" / "train_retrieval.json"
    from graftkit.io import write_json

    write_json(out, {"command": "python bench/train_retrieval.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False) and k != "out"),
        "cpu_count": os.cpu_count(), **results})
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
