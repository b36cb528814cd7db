"""Does DPO on slot-error pairs cut hallucinated content? E2E NLG (cleaned), a decoder trained from scratch.

1. SFT: `graftkit train` (task.type: causal_lm) on the devel file, from a randomly initialised GPT-2 with a
   BPE tokenizer trained on E2E (no pretrained decoder weights are available offline).
2. Pairs: `graftkit pairs` on the first --pair-rows devel rows: chosen = the reference; rejected = the SFT
   model's own output where the slot-error check finds a missing, wrong or added slot, else the reference with
   a planted slot error.
3. DPO: `graftkit train` (task.type: preference, method dpo) from the SFT run folder on those pairs.
4. Both runs generate (greedy) for the first --test-mrs distinct test MRs; BLEU / ROUGE-L against all of
   each MR's references and the slot error rate (SER: missing + wrong + added slots over MR slots).

    python bench/bench_preference_e2e.py --work /tmp/pref-e2e       # SFT, pairs, DPO (sigmoid), scores
    python bench/bench_preference_e2e.py --work /tmp/pref-e2e --loss-type sigmoid sft   # reuses SFT and pairs

Writes bench/out/preference-e2e.json (one entry per DPO setting, and the SFT scores) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generation_common as gc

OUT = Path(__file__).resolve().parent / "out" / "preference-e2e.json"


def _train(tree: dict) -> Path:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    return train(config_from_dict(tree), log=lambda s: None).path


def sft(args, tmp: Path, model_dir: str) -> Path:
    train_csv = gc.write_pairs(tmp / "devel.csv", gc.train_rows())
    return _train({
        "name": "sft", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 160, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": model_dir},
        "task": {"type": "causal_lm", "prompt_column": "mr", "completion_column": "ref", "eval_samples": 0,
                 "generation": {"max_new_tokens": args.max_new_tokens}},
        "train": {"max_steps": args.sft_steps, "batch_size": 16, "learning_rate": 5e-4, "seed": args.seed,
                  "report_to": [], "early_stopping": None, "logging_steps": 100, "warmup": 0.05},
        "eval": {"plots": False, "save_predictions": False}})


def kto_rows(pairs: Path, out: Path) -> Path:
    """KTO's unpaired rows from the pairs: each chosen completion desirable, each rejected one not."""
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r[key], "label": key == "chosen"},
                                      ensure_ascii=False) + "\n" for r in rows for key in ("chosen", "rejected")),
                   encoding="utf-8")
    return out


def dpo(args, tmp: Path, sft_run: Path, pairs: Path) -> Path:
    """DPO (or KTO, with ``--method kto``) from the SFT run on the pairs."""
    train = kto_rows(pairs, tmp / "kto.jsonl") if args.method == "kto" else pairs
    loss = ({"loss_type": args.loss_type[0] if args.loss_type else None} if args.method == "kto" else
            {"loss_type": args.loss_type, "loss_weights": args.loss_weights})
    return _train({
        "name": f"{args.method}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", label(args)), "output_dir": str(tmp / "runs"),
        "data": {"train": str(train), "max_length": 160, "split": {"validation": 0.05, "test": 0.0, "seed": 42}},
        "model": {"name_or_path": str(sft_run)},
        "task": {"type": "preference", "method": args.method, "beta": args.beta, "eval_samples": 0, **loss,
                 "generation": {"max_new_tokens": args.max_new_tokens}},
        "train": {"max_steps": args.dpo_steps, "batch_size": 8, "learning_rate": args.dpo_lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None, "logging_steps": 50, "warmup": 0.1,
                  "eval_strategy": "steps", "eval_steps": args.dpo_steps},
        "eval": {"plots": False, "save_predictions": False}})


def score(run: Path, groups) -> dict:
    """Greedy outputs of ``run`` for each test MR: BLEU, ROUGE-L (multi-reference) and SER."""
    from graftkit.inference.runs import open_run
    from graftkit.tasks.common.generation import metrics

    mrs = list(groups)
    outputs = [p.generated.strip() for p in open_run(run).predict(mrs, batch_size=32)]
    scores, _ = metrics.corpus_scores(outputs, [groups[m] for m in mrs])
    ser, _ = metrics.slot_scores(mrs, outputs)
    words = sum(len(o.split()) for o in outputs) / max(len(outputs), 1)
    return {"bleu": scores["bleu"], "rougeL": scores["rougeL"], **ser, "mrs": len(mrs), "words": words,
            "examples": [{"mr": m, "output": o} for m, o in list(zip(mrs, outputs))[:5]]}


def label(args) -> str:
    weights = f" w={args.loss_weights}" if args.loss_weights else ""
    loss = "+".join(args.loss_type or (["sigmoid"] if args.method == "dpo" else ["kto"]))
    method = "KTO " if args.method == "kto" else ""
    seed = f" seed={args.seed}" if args.seed != 42 else ""  # 42: the SFT run's seed, the first of each arm
    return f"{method}{loss}{weights} beta={args.beta} lr={args.dpo_lr} steps={args.dpo_steps}{seed}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, help="keep the runs here; an SFT run and pairs already there are reused")
    p.add_argument("--sft-steps", type=int, default=600)
    p.add_argument("--pair-rows", type=int, default=1200)
    p.add_argument("--dpo-steps", type=int, default=150)
    p.add_argument("--dpo-lr", type=float, default=2e-5)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--method", choices=("dpo", "kto"), default="dpo")
    p.add_argument("--loss-type", nargs="+", help="trl's loss_type (DPO default: sigmoid; KTO: kto)")
    p.add_argument("--loss-weights", nargs="+", type=float)
    p.add_argument("--test-mrs", type=int, default=150)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    from graftkit.evaluate.preference_pairs import build_pairs

    groups = gc.test_groups(args.test_mrs)
    result = json.loads(OUT.read_text()) if args.work and OUT.is_file() else {}
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        sft_run, pairs = work / "runs" / "sft", work / "pairs.jsonl"
        if not (sft_run / "COMPLETE").is_file():
            t0 = time.time()
            sft(args, work, gc.random_gpt2(work / "gpt2", args.layers, args.width, args.seed))
            result["sft"] = {**score(sft_run, groups), "seconds": time.time() - t0, "steps": args.sft_steps}
            print("SFT", json.dumps({k: v for k, v in result["sft"].items() if k != "examples"}), flush=True)
        if "sft" not in result:  # an SFT run kept in --work from an earlier invocation
            result["sft"] = {**score(sft_run, groups), "steps": args.sft_steps}
        if not pairs.is_file():
            pair_src = gc.write_pairs(work / "pair-src.csv", gc.train_rows()[:args.pair_rows])
            t0 = time.time()
            result["pairs"] = {**build_pairs(sft_run, pair_src, pairs, seed=args.seed, batch_size=32),
                               "seconds": time.time() - t0}
            print("pairs", result["pairs"], flush=True)
        t0 = time.time()
        dpo_run = dpo(args, work, sft_run, pairs)
        result.setdefault("dpo", {})[label(args)] = {
            **score(dpo_run, groups), "seconds": time.time() - t0, "args": vars(args) | {"work": str(args.work)},
            "validation": json.loads((dpo_run / "metrics.json").read_text())["train"].get("preference_validation")}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(table(result))


def table(result: dict) -> str:
    """The Markdown table of SFT and every DPO setting, with trl's reward accuracy and margin on validation."""
    lines = ["| run | BLEU | ROUGE-L | SER | missing | wrong | added | outputs with a slot error | val. reward acc. "
             "| val. reward margin |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    named = [(k if k.startswith("KTO") else f"DPO {k}", v) for k, v in result["dpo"].items()]
    for name, r in [("SFT", result["sft"]), *named]:
        pref = r.get("validation") or {}  # trl's rewards of the final policy on the held-out pairs (DPO runs)
        acc, margin = (f"{pref[k]:.2f}" if k in pref else "" for k in ("rewards/accuracies", "rewards/margins"))
        lines.append(f"| {name} | {r['bleu']:.2f} | {r['rougeL']:.2f} | {r['ser']:.2f} | {r['ser_missing']:.2f} | "
                     f"{r['ser_wrong']:.2f} | {r['ser_added']:.2f} | {r['ser_outputs_with_errors']:.1f}% | {acc} | "
                     f"{margin} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
