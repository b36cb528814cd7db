"""Classification throughput/accuracy: graftkit vs a run_glue-style Trainer vs Trainer + dynamic padding.

Each arm runs in its own subprocess (clean peak-memory numbers); all arms of a dataset run in one
invocation of this script with the same model, learning rate, batch size, epochs and seed.

    python bench/train_classification.py --dataset sst2 --train-rows 8000 --epochs 1
    python bench/train_classification.py --dataset fpb --epochs 3

Writes bench/out/classification-<dataset>.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ARMS = ("run_glue", "dynamic", "graftkit")


def data_files(args, tmp: Path) -> tuple[Path, Path]:
    if args.dataset == "sst2":
        train, dev = common.load_sst2(args.train_rows, args.seed)
    else:
        train, dev = common.fpb_split(args.seed)
    return common.write_csv(tmp / "train.csv", train), common.write_csv(tmp / "dev.csv", dev)


def run_graftkit(args, train_csv: Path, dev_csv: Path, tmp: Path) -> dict:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    cfg = config_from_dict({
        "name": "bench", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "test": str(dev_csv), "max_length": args.max_length,
                 "split": {"validation": 0.0, "test": 0.0}},  # no held-out part: train on all, score on dev
        "model": {"name_or_path": "bundled:minilm"},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None, "logging_steps": 50},
        "eval": {"plots": False, "save_predictions": False},
    })
    cpu = common.train_cpu_callback()
    with common.measure() as m:
        run = train(cfg, extra_callbacks=[cpu], log=lambda s: None)
    m["train_cpu_s"] = cpu.cpu_s
    metrics = json.loads(run.metrics.read_text())
    tm = metrics["train"]
    return {"samples_per_s": tm["train_samples_per_second"], "train_runtime_s": tm["train_runtime"],
            "dev_accuracy": metrics["test"]["accuracy"], **m}


def run_baseline(args, train_csv: Path, dev_csv: Path, tmp: Path, dynamic: bool) -> dict:
    """transformers.Trainer set up as run_glue.py does by default (pad_to_max_length=True, max_seq_length=128),
    or with dynamic padding (DataCollatorWithPadding)."""
    import datasets
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, default_data_collator, set_seed)

    from graftkit.modeling.load import resolve_model_path

    set_seed(args.seed)
    path = resolve_model_path("bundled:minilm")
    raw = datasets.load_dataset("csv", data_files={"train": str(train_csv), "dev": str(dev_csv)})
    labels = sorted(set(raw["train"]["label"]), key=str)
    l2i = {lab: i for i, lab in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(map(str, labels))), label2id={str(k): v for k, v in l2i.items()})

    def prep(batch):
        enc = tok(batch["text"], padding=False if dynamic else "max_length", max_length=args.max_length, truncation=True)
        enc["labels"] = [l2i[x] for x in batch["label"]]
        return enc

    ds = raw.map(prep, batched=True, remove_columns=["text", "label"])
    # --glue-max-steps: time-box the slow padded arm (throughput only; accuracy is then not comparable)
    max_steps = args.glue_max_steps if (not dynamic and args.glue_max_steps) else -1
    targs = TrainingArguments(output_dir=str(tmp / "out"), per_device_train_batch_size=args.batch_size,
                              max_steps=max_steps,
                              per_device_eval_batch_size=64, learning_rate=args.lr, num_train_epochs=args.epochs,
                              seed=args.seed, save_strategy="no", report_to="none", logging_steps=50)

    def acc(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    trainer = Trainer(model=model, args=targs, train_dataset=ds["train"], eval_dataset=ds["dev"],
                      data_collator=DataCollatorWithPadding(tok) if dynamic else default_data_collator,
                      compute_metrics=acc, callbacks=[cpu := common.train_cpu_callback()])
    with common.measure() as m:
        result = trainer.train()
    m["train_cpu_s"] = cpu.cpu_s
    ev = trainer.evaluate()
    return {"samples_per_s": result.metrics["train_samples_per_second"], "steps": trainer.state.global_step,
            "train_runtime_s": result.metrics["train_runtime"],
            "dev_accuracy": ev["eval_accuracy"] if max_steps < 0 else None, **m}


def one_arm(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"gk-bench-{args.arm}-"))
    train_csv, dev_csv = data_files(args, tmp)
    if args.arm == "graftkit":
        res = run_graftkit(args, train_csv, dev_csv, tmp)
    else:
        res = run_baseline(args, train_csv, dev_csv, tmp, dynamic=args.arm == "dynamic")
    # training samples processed / CPU seconds of this process: less sensitive to other jobs on the machine
    n_train = sum(1 for _ in open(train_csv)) - 1
    steps = res.get("steps")
    seen = steps * args.batch_size if steps and args.arm == "run_glue" and args.glue_max_steps else n_train * args.epochs
    res["samples_per_cpu_s"] = seen / res["train_cpu_s"]
    res["n_train"] = n_train
    Path(args.json).write_text(json.dumps(res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["sst2", "fpb"], required=True)
    p.add_argument("--train-rows", type=int, default=8000, help="SST-2 training sentences (seeded sample)")
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--glue-max-steps", type=int, default=0,
                   help="stop the run_glue-style (pad to 128) arm after N steps: throughput only")
    p.add_argument("--arm", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.arm:
        return one_arm(args)
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    results = {}
    for arm in args.arms.split(","):
        jf = out_dir / f".arm-{arm}.json"
        cmd = [sys.executable, __file__, *sys.argv[1:], "--arm", arm, "--json", str(jf)]
        print(f"[{arm}] running ...", flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        results[arm] = json.loads(jf.read_text())
        print(f"[{arm}] {results[arm]}", flush=True)
    summary = {"args": {k: v for k, v in vars(args).items() if k not in ("arm", "json")}, "results": results}
    (out_dir / f"classification-{args.dataset}.json").write_text(json.dumps(summary, indent=2))
    print("\n| arm | samples/s (wall) | samples/CPU-s | peak RSS MiB | dev accuracy | vs run_glue | vs dynamic |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm, r in results.items():
        ratio = lambda base: f"{r['samples_per_s'] / results[base]['samples_per_s']:.2f}x" if base in results else "-"  # noqa: E731
        print(f"| {arm} | {r['samples_per_s']:.1f} | {r['samples_per_cpu_s']:.1f} | {r['peak_rss_mib']:.0f} | "
              f"{'n/a (time-boxed)' if r['dev_accuracy'] is None else format(r['dev_accuracy'], '.4f')} | "
              f"{ratio('run_glue')} | {ratio('dynamic')} |")


if __name__ == "__main__":
    main()
