"""Where a graftkit training step spends its time, and how close it comes to the machine's fp32 peak.

Builds the real training path (``graftkit.train.trainer.build_trainer``: the task's dataset, collator,
loss and the Trainer's fused AdamW) for the bundled MiniLM, then runs ``--steps`` training steps by
hand under ``torch.profiler``, each phase in its own ``record_function`` block: data loading + collation
(the Trainer's DataLoader), forward (+ loss), backward, optimizer step (+ zero_grad), and one evaluation
pass over ``--eval-rows`` rows (reported per training step of one epoch, the cost an epoch-end eval adds).

FLOP counting (stated because every "GFLOP/s" depends on it): the padded batch is counted as computed,
so padding costs throughput. Per step, with B rows padded to L tokens, P = weights of the encoder's
Linear layers (embeddings are lookups, the head and pooler are < 0.1% and ignored), n layers, width H:
forward = 2·P·B·L + 4·n·B·L²·H (QKᵀ and attention·V); a training step = 3 × forward (backward ≈ 2 ×
forward), i.e. ≈ 6·P·tokens + attention. The evaluation row assumes a validation split of 10% of the
training rows (data.split.validation's default), evaluated once per epoch, spread over the epoch's steps. The peak is the best of ``torch.mm`` on 2048² fp32 matrices,
measured in the same process with the same thread count, just before the profile.

    python bench/train_profile.py --dataset cluener --steps 30
    python bench/train_profile.py --dataset sst2 --steps 30 --max-tokens 512
    python bench/train_profile.py --dataset cluener --steps 60 --compile   # inductor warm-up cost

Writes bench/out/train_profile-<dataset>[-tag].json (phase table, profiler top ops) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

import common  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHASES = ("data", "forward", "backward", "optimizer")


def write_data(name: str, tmp: Path, train_rows: int, seed: int) -> dict:
    """Data files for one benchmark dataset; returns the config's ``data`` and ``task`` sections."""
    if name == "cluener":
        lines = (common.SHARED / "cluener2020" / "train.json").read_text(encoding="utf-8").splitlines()
        lines = lines[:train_rows] if train_rows else lines
        (tmp / "train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {"data": {"train": str(tmp / "train.json"), "test": str(common.SHARED / "cluener2020" / "dev.json"),
                         "format": "cluener"}, "task": {"type": "ner", "repair_tags": True}}
    if name == "sst2":
        train, dev = common.load_sst2(train_rows or 8000, seed)
    else:
        train, dev = common.fpb_split(seed)
        train = train[:train_rows] if train_rows else train
    return {"data": {"train": str(common.write_csv(tmp / "train.csv", train)),
                     "test": str(common.write_csv(tmp / "test.csv", dev))}, "task": {"type": "classification"}}


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of an n×n×n matmul (2n³ FLOPs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def linear_params(model) -> int:
    """Weights of the encoder's Linear layers (the per-token matmuls)."""
    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and ".encoder." in f".{name}.")


def step_flops(model, batch: dict) -> float:
    """Training FLOPs of one batch as padded: 3 × (2·P·B·L + 4·n·B·L²·H)."""
    cfg = model.config
    rows, length = batch["input_ids"].shape
    forward = 2 * linear_params(model) * rows * length + 4 * cfg.num_hidden_layers * rows * length ** 2 * cfg.hidden_size
    return 3.0 * forward


def build(args, tmp: Path):
    """The graftkit Trainer for the benchmark dataset, exactly as ``graftkit train`` builds it."""
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.session import prepare_run_dir
    from graftkit.train.trainer import build_trainer, prepare

    sections = write_data(args.dataset, tmp, args.train_rows, args.seed)
    train = {"batch_size": args.batch_size, "seed": args.seed, "report_to": [], "early_stopping": None,
             "max_tokens_per_batch": args.max_tokens, "compile": args.compile, "threads": args.threads}
    cfg = config_from_dict({"name": "profile", "output_dir": str(tmp / "runs"),
                            "data": {**sections["data"], "split": {"validation": 0.0, "test": 0.0}},
                            "task": sections["task"], "train": train, "eval": {"plots": False}})
    task, splits = prepare(cfg)
    splits.validation = splits.test[: args.eval_rows]  # the eval pass measured below
    run, _ = prepare_run_dir(cfg, resume=False, overwrite=True)
    trainer, _ = build_trainer(cfg, task, splits, run, log=lambda m: None)
    return trainer


def timed(name: str, fn, clock: dict):
    with record_function(name):
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        clock[name] = clock.get(name, 0.0) + time.perf_counter() - t0
    return out


def run_steps(trainer, steps: int, warmup: int) -> tuple[dict, list, float, float]:
    """``steps`` hand-driven training steps; times of the first ``warmup`` (compile, caches) kept apart."""
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    loader = trainer.get_train_dataloader()
    # what Trainer.train does with torch_compile=True (through accelerate), done here for the hand-driven loop
    model = torch.compile(trainer.model, backend=trainer.args.torch_compile_backend or "inductor") \
        if trainer.args.torch_compile else trainer.model
    model.train()
    clock, warm_clock, rows, flops, it = {}, {}, [], 0.0, iter(loader)
    for step in range(steps):
        target = warm_clock if step < warmup else clock
        batch = timed("data", lambda: next(it), target)
        loss = timed("forward", lambda: trainer.compute_loss(model, dict(batch)), target)
        timed("backward", loss.backward, target)
        timed("optimizer", lambda: (trainer.optimizer.step(), trainer.optimizer.zero_grad()), target)
        if step >= warmup:
            rows.append(batch["input_ids"].shape[0])
            flops += step_flops(trainer.model, batch)
    return clock, rows, flops, sum(warm_clock.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=("cluener", "sst2", "fpb"), default="cluener")
    ap.add_argument("--train-rows", type=int, default=2000)
    ap.add_argument("--eval-rows", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3, help="steps timed apart (first allocations; compile)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=None, help="train.max_tokens_per_batch (default off)")
    ap.add_argument("--compile", action="store_true", help="train.compile (torch.compile, inductor)")
    ap.add_argument("--threads", default="auto")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    args.threads = int(args.threads) if args.threads.isdigit() else args.threads
    tmp = Path(tempfile.mkdtemp(prefix="graftkit-profile-"))
    trainer = build(args, tmp)
    peak = sgemm_peak()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else []),
                 record_shapes=False) as prof:
        clock, rows, flops, warm_s = run_steps(trainer, args.steps, args.warmup)
        t0 = time.perf_counter()
        with record_function("eval"):
            trainer.evaluate()
        eval_s = time.perf_counter() - t0
    measured = args.steps - args.warmup
    step_s = sum(clock.values()) / measured
    steps_per_epoch = len(trainer.get_train_dataloader())
    result = {
        "args": vars(args), "threads": torch.get_num_threads(), "sgemm_peak_gflops": peak,
        "phase_ms_per_step": {k: 1e3 * clock[k] / measured for k in PHASES},
        # a validation split of 10% of train (data.split.validation's default) evaluated once per epoch
        "eval_ms_per_train_step": 1e3 * eval_s / args.eval_rows * 0.1 * len(trainer.train_dataset) / steps_per_epoch,
        "eval_s": eval_s, "steps_per_epoch": steps_per_epoch, "warmup_s": warm_s, "warmup_steps": args.warmup,
        "rows_per_s": sum(rows) / sum(clock.values()), "gflops": flops / sum(clock.values()) / 1e9,
        "mean_rows_per_batch": sum(rows) / len(rows), "step_ms": 1e3 * step_s,
        "top_ops": prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15),
    }
    result["fraction_of_peak"] = result["gflops"] / peak
    tag = f"-{args.tag}" if args.tag else ""
    out = REPO / "bench" / "out" / f"train_profile-{args.dataset}{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(result["top_ops"])
    print(f"\n{args.dataset}{tag}: threads={result['threads']} sgemm peak {peak:.1f} GFLOP/s, "
          f"{result['rows_per_s']:.1f} rows/s, {result['gflops']:.1f} GFLOP/s = {100 * result['fraction_of_peak']:.1f}% "
          f"of peak, {result['mean_rows_per_batch']:.1f} rows/batch, warm-up {warm_s:.1f}s over {args.warmup} steps")
    print("| phase | ms / step | share |\n| --- | --- | --- |")
    total = sum(result["phase_ms_per_step"].values()) + result["eval_ms_per_train_step"]
    for k, v in [*result["phase_ms_per_step"].items(), ("eval (per step of an epoch)", result["eval_ms_per_train_step"])]:
        print(f"| {k} | {v:.1f} | {100 * v / total:.1f}% |")


if __name__ == "__main__":
    main()
