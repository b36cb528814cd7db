"""causal_lm training machinery on E2E NLG: `graftkit train` (task.type: causal_lm) against trl's
SFTTrainer with its documented defaults, on the same randomly initialised GPT-2 (6 x 384, a byte-level
BPE tokenizer trained on the E2E text: no pretrained decoder weights are available offline).

Rows are (prompt = MR, completion = reference) from the devel file; both arms use completion-only
loss, the same steps, batch size, learning rate and seed (SFTConfig keeps every other default:
no packing, no padding-free, pad_to_multiple_of auto). Eval loss is the completion-token loss on the
same first N test pairs, computed by each arm's own trainer at the last step.

    python bench/bench_generation_causal.py --steps 300

Writes bench/out/generation-causal.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generation_common as gc

ARMS = ("trl_sft", "graftkit")


def _eval_rows(n: int):
    return gc.e2e_rows("test-fixed.csv")[:n]


def run_trl(args, tmp: Path) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model_dir = gc.random_gpt2(tmp / "gpt2", seed=args.seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    as_ds = lambda rows: datasets.Dataset.from_dict({"prompt": [r[0] for r in rows],
                                                     "completion": [r[1] for r in rows]})
    sft = SFTConfig(str(tmp / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                    per_device_eval_batch_size=args.batch_size, learning_rate=args.lr, warmup_steps=int(0.1 * args.steps),
                    seed=args.seed, save_strategy="no", eval_strategy="no", logging_steps=50, report_to="none",
                    use_cpu=True, disable_tqdm=True, bf16=args.trl_bf16)
    trainer = SFTTrainer(model=model, args=sft, train_dataset=as_ds(gc.train_rows()),
                         eval_dataset=as_ds(_eval_rows(args.eval_rows)), processing_class=tok)
    result = trainer.train()
    return {"train_samples_per_s": result.metrics["train_samples_per_second"],
            "train_loss": result.metrics["train_loss"], "eval_loss": trainer.evaluate()["eval_loss"]}


def run_graftkit(args, tmp: Path) -> dict:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    model_dir = gc.random_gpt2(tmp / "gpt2", seed=args.seed)
    train_csv = gc.write_pairs(tmp / "train.csv", gc.train_rows())
    eval_csv = gc.write_pairs(tmp / "eval.csv", _eval_rows(args.eval_rows))
    cfg = config_from_dict({
        "name": "bench-causal", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "validation": str(eval_csv), "max_length": 256,
                 "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": model_dir},
        "task": {"type": "causal_lm", "prompt_column": "mr", "completion_column": "ref", "eval_samples": 0},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "eval_batch_size": args.batch_size,
                  "learning_rate": args.lr, "seed": args.seed, "report_to": [], "early_stopping": None,
                  "logging_steps": 50, "eval_strategy": "steps", "eval_steps": args.steps, "metric": "loss"},
        "eval": {"plots": False, "save_predictions": False},
    })
    run = train(cfg, log=lambda s: None)
    history = json.loads((run.path / "history.json").read_text())
    metrics = json.loads((run.path / "metrics.json").read_text())["train"]
    eval_loss = [h["eval_loss"] for h in history if "eval_loss" in h][-1]
    return {"train_samples_per_s": metrics["train_samples_per_second"], "train_loss": metrics["train_loss"],
            "eval_loss": eval_loss}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=ARMS)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-rows", type=int, default=500)
    p.add_argument("--seed", type=int, default=42)
    # trl's default is bf16=True; on a CPU without bf16 matrix units (this one: no avx512_bf16/AMX) that
    # autocast runs every matmul in emulated bf16 on one core, >10x slower than fp32 (200 steps did not
    # finish in 30 min). Both arms therefore train in fp32 unless --trl-bf16 asks for trl's default.
    p.add_argument("--trl-bf16", action="store_true", help="keep trl's default bf16=True (slow on most CPUs)")
    args = p.parse_args()
    if args.arm:
        with tempfile.TemporaryDirectory() as tmp:
            fn = run_trl if args.arm == "trl_sft" else run_graftkit
            print("RESULT " + json.dumps(fn(args, Path(tmp))))
        return
    results = gc.run_arms(__file__, ARMS, sys.argv[1:], "generation-causal.json", args)
    print("| arm | train samples/s | train loss | eval loss (completion tokens) |")
    print("| --- | --- | --- | --- |")
    for arm, r in results.items():
        print(f"| {arm} | {r['train_samples_per_s']:.1f} | {r['train_loss']:.3f} | {r['eval_loss']:.3f} |")
    a, b = results["trl_sft"], results["graftkit"]
    print(f"speed-up {b['train_samples_per_s'] / a['train_samples_per_s']:.2f}x; eval loss {b['eval_loss']:.3f} vs "
          f"{a['eval_loss']:.3f}")


if __name__ == "__main__":
    main()
