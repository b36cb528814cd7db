"""Training throughput: a plain transformers.Trainer vs graftkit's earlier settings vs graftkit's fast path, one run.

For each dataset (FPB, SST-2, CLUENER) and each system, the bundled MiniLM trains one epoch on the
first ``--rows`` training rows (same seed, learning rate and 16-row batches; the token-budget arm
gets ``16 × mean row length`` tokens per batch, about 16 rows) and is scored on ``--test-rows`` test rows:
- ``hf``: transformers.Trainer as the examples set it up — run_glue.py (pad to 128) for classification,
  run_ner.py (dynamic padding, first-piece labels) for NER;
- ``graftkit``: ``graftkit.train.trainer.train`` with the settings graftkit had before its fast path
  (length-grouped 16-row batches, ``train.threads: keep``);
- ``graftkit-fast``: the same with ``train.max_tokens_per_batch`` and ``train.threads: auto``.
Samples/s are from ``train_runtime``; GFLOP/s count the padded batches of the system's own training
DataLoader (one pass over it before training, the FLOP rule of bench/train_profile.py), against an
sgemm peak measured before and after each dataset. Run from the repository root:

    python bench/train_throughput.py --rows 160 --test-rows 200 > bench/out/train_throughput.log 2>&1
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

from train_profile import sgemm_peak, step_flops, write_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("hf", "graftkit", "graftkit-fast")


def loader_flops(trainer) -> float:
    """Training FLOPs of one epoch of this Trainer's own DataLoader, padded batches as computed."""
    return sum(step_flops(trainer.model, batch) for batch in trainer.get_train_dataloader())


def hf_classification(sections: dict, args, out: Path) -> tuple:
    """run_glue.py's defaults: pad_to_max_length=True (128), default_data_collator, Trainer defaults."""
    import datasets
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments,
                              default_data_collator, set_seed)

    from graftkit.modeling.load import resolve_model_path

    set_seed(args.seed)
    path = resolve_model_path("bundled:minilm")
    raw = datasets.load_dataset("csv", data_files={"train": sections["data"]["train"], "test": sections["data"]["test"]})
    raw = datasets.DatasetDict(train=raw["train"].select(range(min(args.rows, len(raw["train"])))),
                               test=raw["test"].select(range(min(args.test_rows, len(raw["test"])))))
    labels = sorted(set(raw["train"]["label"]), key=str)
    l2i = {lab: i for i, lab in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    def prep(batch):
        enc = tok(batch["text"], padding="max_length", max_length=128, truncation=True)
        enc["labels"] = [l2i.get(x, 0) for x in batch["label"]]
        return enc

    ds = raw.map(prep, batched=True, remove_columns=["text", "label"])
    targs = TrainingArguments(output_dir=str(out), per_device_train_batch_size=16, learning_rate=args.lr,
                              num_train_epochs=1, seed=args.seed, save_strategy="no", report_to="none", use_cpu=True)
    trainer = Trainer(model=model, args=targs, train_dataset=ds["train"], data_collator=default_data_collator)
    flops = loader_flops(trainer)
    result = trainer.train()
    logits = trainer.predict(ds["test"]).predictions
    accuracy = float((np.argmax(logits, -1) == np.array(ds["test"]["labels"])).mean())
    return result.metrics["train_runtime"], len(ds["train"]), flops, {"accuracy": accuracy}


def hf_ner(sections: dict, args, out: Path) -> tuple:
    """run_ner.py's defaults (bench/train_ner.py's baseline), on the same rows."""
    import transformers

    import train_ner  # the run_ner-style baseline the NER benchmark already uses
    from graftkit.config import DataConfig
    from graftkit.modeling.load import resolve_model_path
    from graftkit.tasks.ner.config import NerConfig
    from graftkit.tasks.ner.readers import read_ner

    dcfg, tcfg = DataConfig(**sections["data"]), NerConfig(**sections["task"])
    train_ex = read_ner(sections["data"]["train"], dcfg, tcfg)[0][: args.rows]
    test_ex = read_ner(sections["data"]["test"], dcfg, tcfg)[0][: args.test_rows]
    ns = argparse.Namespace(seed=args.seed, max_length=128, lr=args.lr, epochs=1, batch_size=16)
    captured = {}

    class CountingTrainer(transformers.Trainer):  # count FLOPs of the baseline's own DataLoader before training
        def train(self, *a, **k):
            captured["flops"] = loader_flops(self)
            return super().train(*a, **k)

    transformers.Trainer, saved = CountingTrainer, transformers.Trainer
    try:
        row = train_ner.baseline(train_ex, test_ex, resolve_model_path("bundled:minilm"), ns, out)
    finally:
        transformers.Trainer = saved
    return row["train_seconds"], len(train_ex), captured["flops"], {"f1": row["f1"]}


def graftkit_system(sections: dict, args, out: Path, fast: bool, tmp: Path) -> tuple:
    """graftkit's own path; the fast arm adds the token budget and thread setting."""
    from transformers import TrainerCallback

    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    data = dict(sections["data"])
    data["train"], data["test"] = subset(data, args, tmp)
    train_cfg = {"epochs": 1, "batch_size": 16, "learning_rate": args.lr, "seed": args.seed, "report_to": [],
                 "early_stopping": None, "threads": "auto" if fast else "keep"}
    if fast:
        train_cfg["max_tokens_per_batch"] = args.budget
    cfg = config_from_dict({"name": f"{'fast' if fast else 'base'}", "output_dir": str(out),
                            "data": {**data, "split": {"validation": 0.0, "test": 0.0}},
                            "task": sections["task"], "train": train_cfg,
                            "eval": {"plots": False, "robustness_rows": 0, "calibrate": False}})
    clock = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, a, state, control, model=None, train_dataloader=None, **k):
            clock["flops"] = sum(step_flops(model, b) for b in train_dataloader)
            clock["t0"] = time.perf_counter()

        def on_train_end(self, *a, **k):
            clock["s"] = time.perf_counter() - clock["t0"]

    run = train(cfg, extra_callbacks=[Clock()], log=lambda m: None)
    metrics = json.loads(run.metrics.read_text())
    score = {"f1": metrics["test"]["f1"]} if sections["task"]["type"] == "ner" else \
        {"accuracy": metrics["test"]["accuracy"]}
    return clock["s"], metrics["data"]["train"], clock["flops"], score


def subset(data: dict, args, tmp: Path) -> tuple[str, str]:
    """The first ``--rows`` / ``--test-rows`` rows of the train / test files (CSV keeps its header)."""
    paths = []
    for key, n in (("train", args.rows), ("test", args.test_rows)):
        src = Path(data[key])
        lines = src.read_text(encoding="utf-8").splitlines()
        keep = lines[: n + 1] if src.suffix == ".csv" else lines[:n]
        dst = tmp / f"subset-{key}{src.suffix}"
        dst.write_text("\n".join(keep) + "\n", encoding="utf-8")
        paths.append(str(dst))
    return paths[0], paths[1]


def mean_length(sections: dict, args, tmp: Path) -> float:
    """Mean word-piece count of the training rows (sets the token budget of the fast arm)."""
    from transformers import AutoTokenizer

    from graftkit.modeling.load import resolve_model_path
    from graftkit.tasks.capabilities import TrainsWithTrainer
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import prepare

    train_path, test_path = subset(sections["data"], args, tmp)
    cfg = config_from_dict({"name": "len", "output_dir": str(tmp / "len"),
                            "data": {**sections["data"], "train": train_path, "test": test_path,
                                     "split": {"validation": 0.0, "test": 0.0}}, "task": sections["task"]})
    task, splits = prepare(cfg)
    recipe = task.capability(TrainsWithTrainer, "train")
    ds = recipe.build_dataset(splits.train, AutoTokenizer.from_pretrained(resolve_model_path("bundled:minilm")), 128)
    return sum(len(x) for x in ds["input_ids"]) / len(ds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="fpb,sst2,cluener")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--test-rows", type=int, default=200)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "train_throughput.json"))
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"graftkit-tput-{name}-"))
        sections = write_data(name, tmp, 0, args.seed)
        args.budget = int(round(16 * mean_length(sections, args, tmp)))
        peak_before = sgemm_peak()
        for system in args.systems.split(","):
            t0 = time.perf_counter()
            if system == "hf":
                fn = hf_ner if sections["task"]["type"] == "ner" else hf_classification
                seconds, n, flops, score = fn(sections, args, tmp / "hf")
            else:
                seconds, n, flops, score = graftkit_system(sections, args, tmp / system, system.endswith("fast"), tmp)
            rows.append({"dataset": name, "system": system, "train_s": seconds, "rows": n, "samples_per_s": n / seconds,
                         "gflops": flops / seconds / 1e9, "peak_before": peak_before, "budget": args.budget,
                         "wall_s": time.perf_counter() - t0, **score})
            print(json.dumps(rows[-1]), flush=True)
        peak_after = sgemm_peak()
        for r in rows:
            if r["dataset"] == name:
                r["peak_after"] = peak_after
                r["fraction_of_peak"] = r["gflops"] / max(peak_before, peak_after)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print("\n| dataset | system | samples/s | × hf | GFLOP/s | % of peak | accuracy / F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        base = next(x for x in rows if x["dataset"] == r["dataset"] and x["system"] == rows[0]["system"])
        score = r.get("f1", r.get("accuracy"))
        print(f"| {r['dataset']} | {r['system']} | {r['samples_per_s']:.2f} | "
              f"{r['samples_per_s'] / base['samples_per_s']:.2f}x | {r['gflops']:.1f} | "
              f"{100 * r['fraction_of_peak']:.0f}% | {score:.3f} |")


if __name__ == "__main__":
    main()
