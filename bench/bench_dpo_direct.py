"""graftkit's DPO against trl's DPOTrainer used directly: the same job trained both ways, 3 seeds.

Both arms start from the same SFT run folder (bench_preference_e2e.py's E2E GPT-2, 4 x 256, trained from random
weights) and train on the same pairs (`graftkit pairs` output, split once, seeded, into train and validation
files) with the same batch size, steps, learning rate, beta, max_length and seed:
- graftkit: `graftkit train` on a task.type preference config (the library function the CLI calls), warmup 0 and
  weight decay 0 as in trl's defaults, no evaluation during training;
- trl: the quick start of trl's DPO documentation: the model and tokenizer from_pretrained, the pairs through
  load_dataset("json"), DPOConfig, DPOTrainer(model, args, train_dataset, eval_dataset, processing_class), train();
  bf16=False (this is a CPU) and save_strategy="no", everything else trl's defaults (its reference model is a copy
  of the model, as graftkit's is the starting checkpoint loaded twice), except the evaluation batch: graftkit's 64
  (train.eval_batch_size), because trl reports rewards/accuracies as the mean of per-batch means, which is the
  share of pairs ranked right only when the validation pairs fit one batch. trl's DPOConfig turns
  gradient_checkpointing on by default; the arm trl-no-gc turns it off, graftkit's setting, to tell that default
  apart from everything else.

Reported: samples/s of the train() call alone (the Trainer's own train_samples_per_second; dataset tokenisation
and model loading are outside it), each arm's samples/s over the trl arm's in the same seed (the arms of a seed run
back to back, so this ratio is less exposed to a shared machine's drifting load than the absolute rates), and
trl's rewards/accuracies and rewards/margins on the validation pairs after training (graftkit: its metrics.json,
which holds trl's evaluate() of the final policy). Each (arm, seed) runs in its own process, so no arm inherits
another's threads, caches or allocator state.

    python bench/bench_preference_e2e.py --work /tmp/pref-e2e      # once: the SFT run and the pairs
    nice -n 19 python bench/bench_dpo_direct.py --work /tmp/pref-e2e --steps 40

Writes bench/out/dpo-direct.json and prints a Markdown table (mean ± sd over the seeds).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

OUT = Path(__file__).resolve().parent / "out" / "dpo-direct.json"
ARMS = ("graftkit", "trl", "trl-no-gc")


def split_pairs(pairs: Path, out: Path, validation: float, seed: int = 42) -> tuple[Path, Path]:
    """train.jsonl and validation.jsonl (prompt, chosen, rejected only): the one split both arms read."""
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    random.Random(seed).shuffle(rows)
    n_val = max(1, round(len(rows) * validation))
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.jsonl", out / "validation.jsonl"
    for path, part in zip(paths, (rows[n_val:], rows[:n_val])):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
    return paths


def run_graftkit(args, train: Path, val: Path, tmp: Path) -> dict:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train as graftkit_train

    run = graftkit_train(config_from_dict({
        "name": f"dpo-seed{args.seed}", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train), "validation": str(val), "max_length": args.max_length,
                 "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": str(args.sft)},
        "task": {"type": "preference", "method": "dpo", "beta": args.beta, "eval_samples": 0,
                 "generation": {"max_new_tokens": 8}},  # generation quality is not measured here
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                  "seed": args.seed, "warmup": 0, "weight_decay": 0.0, "report_to": [], "early_stopping": None,
                  "logging_steps": args.steps, "eval_strategy": "steps", "eval_steps": 10 ** 6},
        "eval": {"plots": False, "save_predictions": False}}), log=lambda s: None).path
    metrics = json.loads((run / "metrics.json").read_text())["train"]
    # transformers evaluates (and checkpoints) at the last step inside train() under graftkit's eval strategies;
    # trl's quick start evaluates after train(): this rate leaves the in-loop evaluation out
    evaluating = sum(e.get("eval_runtime", 0.0) for e in json.loads((run / "history.json").read_text()))
    steps_rate = args.steps * args.batch_size / (metrics["train_runtime"] - evaluating)
    return {"samples_per_s": metrics["train_samples_per_second"], "step_samples_per_s": round(steps_rate, 3),
            **metrics["preference_validation"]}


def run_trl(args, train: Path, val: Path, tmp: Path, checkpointing: bool) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(args.sft)
    tokenizer = AutoTokenizer.from_pretrained(args.sft)
    data = load_dataset("json", data_files={"train": str(train), "validation": str(val)})
    extra = {} if checkpointing else {"gradient_checkpointing": False}
    training_args = DPOConfig(output_dir=str(tmp / "trl"), per_device_train_batch_size=args.batch_size,
                              max_steps=args.steps, learning_rate=args.lr, beta=args.beta,
                              max_length=args.max_length, seed=args.seed, logging_steps=args.steps,
                              per_device_eval_batch_size=64, bf16=False, save_strategy="no", report_to="none",
                              **extra)
    trainer = DPOTrainer(model=model, args=training_args, train_dataset=data["train"],
                         eval_dataset=data["validation"], processing_class=tokenizer)
    result = trainer.train()
    scores = trainer.evaluate()
    return {"samples_per_s": result.metrics["train_samples_per_second"],
            "step_samples_per_s": result.metrics["train_samples_per_second"],  # no evaluation inside train()
            **{k[5:]: v for k, v in scores.items() if k.startswith("eval_rewards/") or k == "eval_loss"}}


def one_arm(args) -> None:
    """One (arm, seed) in this process; prints ``RESULT {json}``."""
    train, val = args.work / "dpo-direct" / "train.jsonl", args.work / "dpo-direct" / "validation.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        if args.arm == "graftkit":
            out = run_graftkit(args, train, val, Path(tmp))
        else:
            out = run_trl(args, train, val, Path(tmp), checkpointing=args.arm == "trl")
    print("RESULT " + json.dumps(out), flush=True)


def spawn(arm: str, seed: int, argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--arm", arm, "--seed", str(seed), *argv], text=True,
                          capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{arm} seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def mean_sd(values: list[float], digits: int) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def table(results: dict) -> str:
    """mean ± sd over the seeds; "÷ trl" is each seed's rate over the trl arm's in that seed."""
    lines = ["| arm | train samples/s | ÷ trl, same seed | without in-loop evaluation | ÷ trl, same seed | "
             "val. reward accuracy | val. reward margin |", "| --- | --- | --- | --- | --- | --- | --- |"]
    base = {r["seed"]: r for r in results.get("trl", [])}
    for arm, runs in results.items():
        cells = []
        for key in ("samples_per_s", "step_samples_per_s"):
            cells.append(mean_sd([r[key] for r in runs], 2))
            cells.append(mean_sd([r[key] / base[r["seed"]][key] for r in runs], 2) if base else "")
        cells += [mean_sd([r[k] for r in runs], 3) for k in ("rewards/accuracies", "rewards/margins")]
        lines.append(f"| {arm} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, required=True, help="bench_preference_e2e.py's --work folder (runs/sft, "
                   "pairs.jsonl)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--max-length", type=int, default=160)
    p.add_argument("--validation", type=float, default=0.05, help="share of the pairs held out")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.sft = args.work / "runs" / "sft"
    if args.arm:
        return one_arm(args)
    if not (args.sft / "COMPLETE").is_file() or not (args.work / "pairs.jsonl").is_file():
        sys.exit(f"no SFT run and pairs in {args.work}: run bench/bench_preference_e2e.py --work {args.work} first")
    split_pairs(args.work / "pairs.jsonl", args.work / "dpo-direct", args.validation)
    argv = list(sys.argv[1:])
    results = {arm: [] for arm in args.arms}
    for seed in args.seeds:  # seeds outermost: a drift in the machine's load touches every arm alike
        for arm in args.arms:
            results[arm].append({"seed": seed, **spawn(arm, seed, argv)})
            print(arm, results[arm][-1], flush=True)
    common.write_json(OUT, {"args": vars(args), "results": results, "machine": "shared (nice 19)"})
    print(table(results))


if __name__ == "__main__":
    main()
