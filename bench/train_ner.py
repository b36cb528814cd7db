"""NER benchmark: graftkit (linear head, CRF head) vs a plain transformers.Trainer set up like run_ner.py.

For each dataset (CLUENER2020 train → dev, Weibo NER train → test) and each system, train the
bundled MiniLM with the same epochs, learning rate, batch size and seed, then report entity F1
(seqeval, strict IOB2, on the same word-level gold) and training throughput (sentences per
second of ``trainer.train()`` wall time). Run from the repository root:

    flock /tmp/graftkit-bench.lock python bench/train_ner.py > bench/out/ner.log 2>&1

Subsampling (``--cluener-train``, ``--cluener-dev``, ``--weibo-train``) keeps a run under ~25 minutes on a small CPU machine.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from graftkit.config import DataConfig  # noqa: E402
from graftkit.tasks.run_config import config_from_dict  # noqa: E402
from graftkit.modeling.load import resolve_model_path  # noqa: E402
from graftkit.tasks.ner.config import NerConfig  # noqa: E402
from graftkit.tasks.ner.preprocess import word_spans  # noqa: E402
from graftkit.tasks.ner.readers import read_ner  # noqa: E402
from graftkit.tasks.ner.schemes import spans_to_tags  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def word_tags(examples):
    """Examples → (words, IOB2 word tags), the columns run_ner.py reads."""
    out = []
    for e in examples:
        words = e.extra["words"]
        out.append(([e.text[s:t] for s, t in words], spans_to_tags(len(words), word_spans(e.label, words), "IOB2")))
    return out


def baseline(train, test, model_dir: str, args, out_dir: Path) -> dict:
    """transformers' examples/pytorch/token-classification/run_ner.py, reduced to its defaults:
    first-piece labels (-100 elsewhere), DataCollatorForTokenClassification (dynamic padding),
    AutoModelForTokenClassification, Trainer with default optimiser settings, argmax predictions."""
    import datasets
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    from transformers import (AutoConfig, AutoModelForTokenClassification, AutoTokenizer,
                              DataCollatorForTokenClassification, Trainer, TrainingArguments, set_seed)

    set_seed(args.seed)
    tr, te = word_tags(train), word_tags(test)
    labels = sorted({t for _, tags in tr for t in tags})
    l2i = {t: i for i, t in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id=l2i)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, config=config)

    def tokenize_and_align_labels(batch):
        enc = tok(batch["tokens"], padding=False, truncation=True, max_length=args.max_length,
                  is_split_into_words=True)
        all_labels = []
        for i, tags in enumerate(batch["ner_tags"]):
            prev, ids = None, []
            for w in enc.word_ids(batch_index=i):
                ids.append(-100 if w is None or w == prev else l2i.get(tags[w], l2i["O"]))
                prev = w
            all_labels.append(ids)
        enc["labels"] = all_labels
        return enc

    def dataset(rows):
        ds = datasets.Dataset.from_dict({"tokens": [w for w, _ in rows], "ner_tags": [t for _, t in rows]})
        return ds.map(tokenize_and_align_labels, batched=True, remove_columns=["tokens", "ner_tags"])

    train_ds, test_ds = dataset(tr), dataset(te)
    targs = TrainingArguments(output_dir=str(out_dir), learning_rate=args.lr, num_train_epochs=args.epochs,
                              per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
                              seed=args.seed, report_to="none", save_strategy="no", logging_steps=50,
                              use_cpu=True)
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, processing_class=tok,
                      data_collator=DataCollatorForTokenClassification(tok))
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    logits, gold, _ = trainer.predict(test_ds)
    pred = logits.argmax(-1)
    y_true, y_pred = [], []
    for p_row, g_row, (words, tags) in zip(pred, gold, te):
        keep = g_row != -100
        pt = [labels[i] for i in p_row[keep]]
        y_pred.append(pt + ["O"] * (len(words) - len(pt)))  # words cut off by truncation count as O
        y_true.append(tags)
    return {"f1": f1_score(y_true, y_pred, mode="strict", scheme=IOB2),
            "f1_default_mode": f1_score(y_true, y_pred), "train_seconds": seconds, "train_cpu_seconds": cpu,
            "sentences_per_second": len(tr) * args.epochs / seconds,
            "sentences_per_cpu_second": len(tr) * args.epochs / cpu}


def graftkit_run(name: str, data: dict, files: dict, crf: bool, args, out_dir: Path) -> dict:
    """graftkit's own path: train() with test evaluation, numbers read from the run folder."""
    from graftkit.train.trainer import train

    cfg = config_from_dict({
        "name": name, "output_dir": str(out_dir),
        "data": {**data, "max_length": args.max_length, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": args.model},
        "task": {"type": "ner", "crf": crf, **files},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
                  "seed": args.seed, "report_to": [], "early_stopping": None, "logging_steps": 50},
        "eval": {"plots": False},
    })
    timing = {}

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timing["t0"], timing["c0"] = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            timing["seconds"] = time.perf_counter() - timing["t0"]
            timing["cpu"] = time.process_time() - timing["c0"]

    run = train(cfg, extra_callbacks=[Clock()], log=print)
    metrics = json.loads(run.metrics.read_text())
    n_train = metrics["data"]["train"]
    return {"f1": metrics["test"]["f1"], "precision": metrics["test"]["precision"],
            "recall": metrics["test"]["recall"], "train_seconds": timing["seconds"], "train_cpu_seconds": timing["cpu"],
            "sentences_per_second": n_train * args.epochs / timing["seconds"],
            "sentences_per_cpu_second": n_train * args.epochs / timing["cpu"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bundled:minilm")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cluener-train", type=int, default=400, help="sentences sampled from CLUENER train (0 = all)")
    ap.add_argument("--cluener-dev", type=int, default=300, help="sentences sampled from CLUENER dev (0 = all)")
    ap.add_argument("--weibo-train", type=int, default=400, help="sentences sampled from Weibo NER train (0 = all)")
    ap.add_argument("--datasets", default="cluener,weibo")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "ner.json"))
    args = ap.parse_args()
    model_dir = resolve_model_path(args.model)
    work = Path(tempfile.mkdtemp(prefix="graftkit-bench-ner-"))
    results = {"args": vars(args), "rows": []}
    for ds in args.datasets.split(","):
        if ds == "cluener":
            base, files = {"format": "cluener"}, {"repair_tags": True}
            src_train, src_test = DATA / "cluener2020" / "train.json", DATA / "cluener2020" / "dev.json"
            train_lines = src_train.read_text(encoding="utf-8").splitlines()
            test_lines = src_test.read_text(encoding="utf-8").splitlines()
            rng = random.Random(args.seed)
            if args.cluener_train:
                train_lines = rng.sample(train_lines, args.cluener_train)
            if args.cluener_dev:
                test_lines = rng.sample(test_lines, args.cluener_dev)
            (work / "train.json").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
            (work / "dev.json").write_text("\n".join(test_lines) + "\n", encoding="utf-8")
            data = {**base, "train": str(work / "train.json"), "test": str(work / "dev.json")}
        else:
            src = (DATA / "weibo_ner" / "weiboNER_2nd_conll.train").read_text(encoding="utf-8")
            sentences = [s for s in src.split("\n\n") if s.strip()]
            if args.weibo_train:
                sentences = random.Random(args.seed).sample(sentences, args.weibo_train)
            (work / "weibo.train").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
            data = {"format": "char_conll", "train": str(work / "weibo.train"),
                    "test": str(DATA / "weibo_ner" / "weiboNER_2nd_conll.test")}
            files = {"strip_segment_digit": True, "repair_tags": True}
        dcfg = DataConfig(**data)
        train_ex, _ = read_ner(data["train"], dcfg, NerConfig(**files))
        test_ex, _ = read_ner(data["test"], dcfg, NerConfig(**files))
        print(f"== {ds}: train {len(train_ex)} sentences, test {len(test_ex)}", flush=True)
        for system in ("baseline", "graftkit-linear", "graftkit-crf"):
            t0 = time.perf_counter()
            if system == "baseline":
                row = baseline(train_ex, test_ex, model_dir, args, work / f"{ds}-baseline")
            else:
                row = graftkit_run(f"{ds}-{system}", data, files, system.endswith("crf"), args, work / "runs")
            row.update(dataset=ds, system=system, wall_seconds=time.perf_counter() - t0)
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n| dataset | system | entity F1 (strict) | sentences/s | ratio | sentences/CPU-s | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results["rows"]:
        b = next(x for x in results["rows"] if x["dataset"] == r["dataset"] and x["system"] == "baseline")
        print(f"| {r['dataset']} | {r['system']} | {r['f1']:.4f} | {r['sentences_per_second']:.1f} | "
              f"{r['sentences_per_second'] / b['sentences_per_second']:.2f}x | {r['sentences_per_cpu_second']:.1f} | "
              f"{r['sentences_per_cpu_second'] / b['sentences_per_cpu_second']:.2f}x |")


if __name__ == "__main__":
    main()
