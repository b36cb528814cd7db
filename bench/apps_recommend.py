"""Recommender benchmark on GENERATED MIND-format click logs (no public MIND with full item text is available here).

Arms, one invocation, same test impressions: popularity (training click counts), embedding similarity
without training (the bundled MiniLM, mean-pooled), and the ranking run (cross-encoder on MiniLM) trained
on the generated training folder. Metrics are MIND's per-impression AUC, MRR, nDCG@5, nDCG@10.

    python bench/apps_recommend.py --impressions 300 --epochs 1
    # with MIND-small (https://msnews.github.io) unpacked into MINDsmall_train/ and MINDsmall_dev/:
    python bench/apps_recommend.py --train MINDsmall_train --test MINDsmall_dev --epochs 1

Writes bench/out/apps-recommend.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, help="a MIND training folder (default: generated)")
    p.add_argument("--test", type=Path, help="a MIND test/dev folder (default: generated)")
    p.add_argument("--impressions", type=int, default=300, help="generated training impressions")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--architectures", nargs="+", default=["cross_encoder", "two_tower"],
                   choices=["cross_encoder", "two_tower"], help="ranking runs to train (same rows and steps)")
    p.add_argument("--baselines-only", action="store_true", help="skip training the ranking run")
    args = p.parse_args()
    from graftkit.apps.recommend.evaluate import compare, score_encoder
    from graftkit.apps.recommend.ranker import Recommender
    from graftkit.apps.recommend.synthetic import write_mind
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    tmp = Path(tempfile.mkdtemp(prefix="bench-recommend-"))
    generated = args.train is None
    train_dir = args.train or write_mind(tmp / "train", impressions=args.impressions, seed=args.seed)
    dev_dir = args.test or write_mind(tmp / "dev", impressions=max(40, args.impressions // 5), seed=args.seed + 1)
    test_dir = args.test or write_mind(tmp / "test", impressions=max(60, args.impressions // 3), seed=args.seed + 2)
    def ranking_run(architecture: str):
        cfg = config_from_dict({
            "name": f"rank-{architecture}", "output_dir": str(tmp / "runs"),
            "data": {"train": str(train_dir), "validation": str(dev_dir), "test": str(test_dir), "max_length": 128},
            "model": {"name_or_path": "bundled:minilm"},
            "task": {"type": "ranking", "max_history": 10, "architecture": architecture},
            "train": {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": 16, "learning_rate": 5e-5,
                      "seed": args.seed, "report_to": [], "early_stopping": None},
            "eval": {"plots": False}})
        t0 = time.perf_counter()
        run = train(cfg, log=lambda m: None)
        return run.path, time.perf_counter() - t0

    runs = {} if args.baselines_only else {a: ranking_run(a) for a in args.architectures}
    table = compare(None, train_dir, test_dir)  # the two baselines, once
    for path, _ in runs.values():  # each run scored the way compare() scores one
        rec = Recommender(path)
        table[f"model ({rec.label})"] = score_encoder(test_dir, rec.scores, rec.max_history)
    train_s = {a: round(sec, 1) for a, (_, sec) in runs.items()}
    out = {"data": "GENERATED (graftkit.apps.recommend.synthetic)" if generated else str(args.train),
           "train_seconds": train_s, "arms": table}
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "apps-recommend.json").write_text(json.dumps(out, indent=2))
    print(f"data: {out['data']}; test impressions: {next(iter(table.values()))['impressions']}")
    print("| ranker | AUC | MRR | nDCG@5 | nDCG@10 |\n|---|---|---|---|---|")
    for name, m in table.items():
        print(f"| {name} | {m['auc']:.3f} | {m['mrr']:.3f} | {m['ndcg@5']:.3f} | {m['ndcg@10']:.3f} |")


if __name__ == "__main__":
    main()
