"""Financial PhraseBank (AllAgree): full fine-tuning vs LoRA / AdaLoRA / IA3 / bottleneck adapters,
+ FGM, + augmentation, + R-Drop, and a 3-run ensemble.

Launch (from the repo root, under the shared benchmark lock):
    flock /tmp/graftkit-bench.lock python bench/peft_compare.py > bench/out/peft_compare.log 2>&1

Data: ../shared/data/financial_phrasebank/Sentences_AllAgree.txt (``sentence@label``, latin-1), split
80/20 stratified with seed 42; the test 20 % is the evaluation set of every row. Training sets are
stratified subsets of the 80 % split (--main-frac, --low-frac; sized so the whole script fits in ~30
minutes on 2 shared CPU cores, and no new run starts after --budget-min minutes). The 3-run
ensemble combines the three full fine-tuning runs of the main column (plain, +FGM, +augmentation).
Writes bench/out/peft_compare.json (updated after every run) and one line per run to stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "financial_phrasebank" / "Sentences_AllAgree.txt"
WORK = Path("/tmp/graftkit-bench-peft")
OUT = REPO / "bench" / "out"
MODEL = "bundled:minilm"

PEFT_LR = {"lora": 1e-3, "adalora": 2e-3, "ia3": 5e-3, "bottleneck": 1e-3}
PEFT_R = {"lora": 8, "adalora": 8, "ia3": 8, "bottleneck": 24}  # bottleneck: 384 / 16 (Pfeiffer's reduction 16)
ENSEMBLE_OF = ("full", "full+fgm", "full+augment")


def read_phrasebank(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.strip():
            text, label = line.rsplit("@", 1)
            texts.append(text.strip())
            labels.append(label.strip())
    return texts, labels


def write_split(path: Path, rows: list[tuple[str, str]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return str(path)


def make_splits(train_sizes: dict[str, float]) -> dict[str, str]:
    from sklearn.model_selection import train_test_split

    texts, labels = read_phrasebank(DATA)
    rows = list(zip(texts, labels))
    train, test = train_test_split(rows, test_size=0.2, random_state=42, stratify=labels)
    files = {"test": write_split(WORK / "test.csv", test), "n_train_split": len(train), "n_test": len(test)}
    for name, frac in train_sizes.items():
        sub = train if frac >= 1 else train_test_split(train, train_size=frac, random_state=42,
                                                       stratify=[r[1] for r in train])[0]
        files[name] = write_split(WORK / f"train-{name}.csv", sub)
        files[f"n_{name}"] = len(sub)
    return files


def config_tree(name: str, train_file: str, test_file: str, epochs: float, max_length: int, **extra) -> dict:
    tree = {
        "name": name, "output_dir": str(WORK / "runs"),
        "data": {"train": train_file, "test": test_file, "max_length": max_length,
                 "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": MODEL},
        "train": {"epochs": epochs, "batch_size": 16, "learning_rate": 1e-4, "report_to": [],
                  "early_stopping": None, "logging_steps": 5, "seed": 42, "save_total_limit": 1},
        "eval": {"plots": False, "batch_size": 64},
    }
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(tree.get(section), dict):
            tree[section].update(values)
        else:
            tree[section] = values
    return tree


def variants() -> list[tuple[str, dict]]:
    """(row name, config sections) of every single-run row."""
    rows = [("full", {})]
    for m in ("lora", "adalora", "ia3", "bottleneck"):
        rows.append((m, {"peft": {"method": m, "r": PEFT_R[m], "alpha": 16}, "train": {"learning_rate": PEFT_LR[m]}}))
    rows.append(("full+fgm", {"train": {"adversarial": {"method": "fgm", "epsilon": 1.0}}}))
    rows.append(("full+augment", {"augment": {"copies": 1, "rate": 0.1}}))
    rows.append(("full+rdrop", {"train": {"rdrop": 1.0}}))
    return rows


def run_one(tree: dict) -> dict:
    """Train one config; returns test accuracy / macro-F1, trainable params, train seconds, peak RSS."""
    import torch

    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    cfg = config_from_dict(tree)
    shutil.rmtree(cfg.run_dir, ignore_errors=True)
    torch.manual_seed(tree["train"]["seed"])
    t0 = time.perf_counter()
    run = train(cfg, overwrite=True, log=lambda m: None)
    seconds = time.perf_counter() - t0
    metrics = json.loads(run.metrics.read_text())
    setup = json.loads((run.path / "training_setup.json").read_text())
    return {"run": str(run.path), "accuracy": metrics["test"]["accuracy"], "macro_f1": metrics["test"]["macro_f1"],
            "trainable": setup["trainable_parameters"], "total": setup["total_parameters"],
            "train_runtime_s": round(metrics["train"]["train_runtime"], 1), "wall_s": round(seconds, 1),
            "generated": setup.get("augment", {}).get("generated", 0),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def run_isolated(tree: dict) -> dict:
    """``run_one`` in a fresh process, so peak memory (ru_maxrss) belongs to this run alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_one, tree).result()


def main() -> None:
    global WORK, MODEL
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--main-frac", type=float, default=0.15, help="fraction of the 80%% split for the main column")
    ap.add_argument("--low-frac", type=float, default=0.1, help="fraction of the 80%% split for the low-data column")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--low-epochs", type=float, default=1)
    ap.add_argument("--max-length", type=int, default=40)
    ap.add_argument("--only", nargs="*", help="row names to run (default all)")
    ap.add_argument("--lr", nargs="*", default=[], metavar="METHOD=LR",
                    help="learning rate of a PEFT method instead of the default (e.g. lora=3e-3)")
    ap.add_argument("--model", default="bundled:minilm")
    ap.add_argument("--work", type=Path, default=Path("/tmp/graftkit-bench-peft"), help="scratch folder")
    ap.add_argument("--json", type=Path, default=OUT / "peft_compare.json", help="results file")
    ap.add_argument("--stop-at", default=None, help="UTC HH:MM after which no new run starts")
    ap.add_argument("--budget-min", type=float, default=20, help="start no new run after this many minutes")
    args = ap.parse_args()
    # the helpers read these module-level settings
    WORK, MODEL = args.work, args.model
    for item in args.lr:
        method, lr = item.split("=", 1)
        PEFT_LR[method] = float(lr)
    if not DATA.is_file():
        sys.exit(f"dataset not found: {DATA}")
    sys.path.insert(0, str(REPO))
    files = make_splits({"main": args.main_frac, "low": args.low_frac})
    print(f"split: train(80%)={files['n_train_split']} test(20%)={files['n_test']} "
          f"main train={files['n_main']} low-data train={files['n_low']}", flush=True)
    settings = {k: v if isinstance(v, (int, float, list, type(None))) else str(v) for k, v in vars(args).items()}
    results: dict = {"files": files, "args": settings, "rows": {}, "skipped": []}
    t_start = time.perf_counter()

    def within_budget(row: str, col: str) -> bool:
        late = args.stop_at and time.strftime("%H:%M", time.gmtime()) >= args.stop_at
        if time.perf_counter() - t_start < args.budget_min * 60 and not late:
            return True
        results["skipped"].append(f"{row}/{col}")
        print(f"{row:14s} {col:5s} skipped: time budget of {args.budget_min} min used", flush=True)
        save()
        return False

    def single(row: str, col: str, epochs: float, extra: dict) -> None:
        if not within_budget(row, col):
            return
        tree = config_tree(f"{row.replace('+', '_')}-{col}", files[col], files["test"], epochs,
                           args.max_length, **json.loads(json.dumps(extra)))
        res = run_isolated(tree)
        results["rows"].setdefault(row, {})[col] = res
        print(f"{row:14s} {col:5s} acc={res['accuracy']:.4f} f1={res['macro_f1']:.4f} "
              f"trainable={res['trainable']:,} train={res['train_runtime_s']}s", flush=True)
        save()

    def save() -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        results["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        args.json.write_text(json.dumps(results, indent=2))

    def ensemble(col: str) -> None:  # evaluation only (members trained above): runs even after the time budget
        from graftkit.train.ensemble import build_ensemble

        members = [results["rows"][r][col]["run"] for r in ENSEMBLE_OF if col in results["rows"].get(r, {})]
        if len(members) < 2:
            return
        t0 = time.perf_counter()
        ens = build_ensemble(members, WORK / "runs" / f"ensemble-{col}", overwrite=True, log=lambda m: None)
        results["rows"].setdefault("ensemble(3)", {})[col] = {
            "accuracy": ens["test"]["accuracy"], "macro_f1": ens["test"]["macro_f1"], "members": members,
            "eval_s": round(time.perf_counter() - t0, 1)}
        print(f"ensemble({len(members)}) {col} acc={ens['test']['accuracy']:.4f} f1={ens['test']['macro_f1']:.4f}",
              flush=True)
        save()

    wanted = lambda row: not args.only or row in args.only  # noqa: E731
    columns = [("main", args.epochs)]
    if not (args.low_frac == args.main_frac and args.low_epochs == args.epochs):
        columns.append(("low", args.low_epochs))  # the column where regularisation should matter
    for col, epochs in columns:
        for row, extra in variants():
            if wanted(row):
                single(row, col, epochs, extra)
        if wanted("ensemble"):
            ensemble(col)
    results["total_s"] = round(time.perf_counter() - t_start, 1)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"total {results['total_s']}s", flush=True)


if __name__ == "__main__":
    main()
