"""Serving benchmark: naive transformers.pipeline endpoint vs graftkit serve (torch, ONNX fp32, ONNX int8).

Steps, all in one run of this script:
1. fine-tune the bundled MiniLM on Financial PhraseBank (AllAgree; seeded stratified 80/20 split,
   10% of the 80 held out for validation) with graftkit, unless --run-dir names a finished run;
2. ``graftkit export --quantize int8`` (parity report: test accuracy of torch, ONNX fp32, ONNX int8);
3. per arm, start a uvicorn server on 127.0.0.1 and send ``--requests`` one-sentence requests at each
   concurrency level from an asyncio httpx client in this process (closed loop: each of the
   N client tasks sends its next request when the previous answer arrives);
4. single-process inference throughput at batch 32 and its fraction of this CPU's FP32 peak;
5. FFN pruning (``--prune-amount``) with a short recovery fine-tune; size/speed/accuracy before and after.

    flock /tmp/graftkit-bench.lock python bench/serve_load.py > bench/out/serve_load.log 2>&1

Writes bench/out/serve_load.json and prints Markdown tables.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import common

KEY = "bench-key-0123456789"  # graftkit serve refuses keys under 16 characters


def write_csv(path: Path, rows) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def train_run(work: Path, epochs: float, seed: int) -> Path:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    train_rows, test_rows = common.fpb_split(seed)
    cfg = config_from_dict({
        "name": "fpb-minilm", "output_dir": str(work / "runs"),
        "data": {"train": str(write_csv(work / "train.csv", train_rows)),
                 "test": str(write_csv(work / "test.csv", test_rows)), "max_length": 128,
                 "split": {"validation": 0.1, "test": 0.0, "seed": seed}},
        "model": {"name_or_path": "bundled:minilm"},
        "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 1e-4, "seed": seed, "report_to": [],
                  "early_stopping": None, "logging_steps": 20},
        "eval": {"plots": False},
    })
    t0 = time.perf_counter()
    run = train(cfg, overwrite=True, log=lambda m: print(m, flush=True))
    print(f"trained in {time.perf_counter() - t0:.0f}s", flush=True)
    return run.path


def start_server(arm: str, run_dir: Path, port: int, threads: int) -> subprocess.Popen:
    # the load generator shares these cores: OpenMP threads that spin after each op would starve it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    if arm == "naive":
        env["NAIVE_MODEL_DIR"] = str(run_dir)
        cmd = [sys.executable, "-m", "uvicorn", "bench.naive_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
    else:
        backend, precision = {"torch": ("torch", "fp32"), "onnx-fp32": ("onnx", "fp32"),
                              "onnx-int8": ("onnx", "int8")}[arm]
        env.update({"GRAFTKIT_API_KEYS": KEY, "GRAFTKIT_SERVE_RATE_LIMIT_PER_MINUTE": "100000000",
                    "GRAFTKIT_SERVE_RATE_LIMIT_BURST": "100000000", "GRAFTKIT_SERVE_LOG_LEVEL": "warning"})
        cmd = [sys.executable, "-c", "from graftkit.cli import app; app()", "serve", str(run_dir),
               "--backend", backend, "--precision", precision, "--port", str(port), "--threads", str(threads),
               "--max-batch-size", "32", "--max-wait-ms", "5", "--log-level", "warning"]
    errlog = REPO / "bench" / "out" / f"serve_load-{arm}.stderr"  # a file, so a chatty server never blocks
    url = f"http://127.0.0.1:{port}" + ("/docs" if arm == "naive" else "/readyz")
    return common.start_server(arm, cmd, env, REPO, url, errlog)


async def load(port: int, sentences: list[str], n: int, concurrency: int) -> dict:
    import httpx

    latencies, errors = [], 0
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60,
                                 headers={"X-API-Key": KEY}) as client:
        async def worker():
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", json={"texts": [sentences[i % len(sentences)]]})
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": n, "concurrency": concurrency, "seconds": round(wall, 2), "rps": round(n / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "errors": errors}


def flops_per_sequence(config, tokens: int) -> float:
    """Forward FLOPs of a BERT encoder for one sequence of ``tokens`` (2 FLOPs per multiply-add).

    Per layer: QKV + output projections 4·d², FFN 2·d·d_ff (weights) → 2·tokens·(4d² + 2·d·d_ff),
    plus attention scores and weighted sum 2·2·tokens²·d. Embedding lookups and the head are ignored.
    """
    d, ff, n_layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return n_layers * (2 * tokens * (4 * d * d + 2 * d * ff) + 4 * tokens * tokens * d)


def measured_sgemm_peak(threads: int) -> float:
    """FP32 FLOP/s of a large torch matmul (2048³) on ``threads`` threads: the achievable dense peak."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t0))
    return best


def batch32_throughput(run_dir: Path, sentences: list[str], threads: int) -> dict:
    import torch
    from transformers import AutoConfig

    from graftkit.inference.predictor import Predictor

    torch.set_num_threads(threads)
    config = AutoConfig.from_pretrained(run_dir)
    peak = measured_sgemm_peak(threads)
    out = {"threads": threads, "measured_sgemm_gflops": round(peak / 1e9, 1), "arms": {}}
    batches = [sentences[i:i + 32] for i in range(0, len(sentences) - 31, 32)][:20]
    for name, kwargs in (("torch", {"backend": "torch"}), ("onnx-fp32", {"backend": "onnx", "threads": threads}),
                         ("onnx-int8", {"backend": "onnx", "precision": "int8", "threads": threads})):
        pred = Predictor(run_dir, **kwargs)
        feats = [pred.features(b)[0] for b in batches]  # the task's DecodesLogits.encode
        pred.backend(feats[0])
        t0 = time.perf_counter()
        for f in feats:
            pred.backend(f)
        seconds = time.perf_counter() - t0
        flops = sum(f["input_ids"].shape[0] * flops_per_sequence(config, f["input_ids"].shape[1]) for f in feats)
        out["arms"][name] = {"sequences_per_s": round(32 * len(feats) / seconds, 1),
                             "gflops": round(flops / seconds / 1e9, 2),
                             "fraction_of_sgemm_peak": round(flops / seconds / peak, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/graftkit-serve-bench"))
    ap.add_argument("--run-dir", type=Path, help="use this finished run instead of training one")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--arms", nargs="+", default=["naive", "torch", "onnx-fp32", "onnx-int8"])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--prune-amount", type=float, default=0.3, help="FFN pruning fraction (0 = skip)")
    ap.add_argument("--prune-steps", type=int, default=40, help="recovery fine-tune steps after pruning")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    run_dir = args.run_dir or train_run(args.work, args.epochs, args.seed)
    from graftkit.export import export_run

    parity = export_run(run_dir, quantize="int8", int8_tolerance=1.0, log=lambda m: print(m, flush=True))
    _, test_rows = common.fpb_split(args.seed)
    sentences = [t for t, _ in test_rows]
    random.Random(args.seed).shuffle(sentences)
    results = {"run_dir": str(run_dir), "parity": parity, "load": {}, "cpu": os.cpu_count(),
               "command": " ".join(sys.argv)}
    out = REPO / "bench" / "out" / "serve_load.json"
    for arm in args.arms:
        port = common.free_port()
        proc = start_server(arm, run_dir, port, args.threads)
        try:
            asyncio.run(load(port, sentences, 50, 4))  # warm-up
            for c in args.concurrency:
                r = asyncio.run(load(port, sentences, args.requests, c))
                results["load"].setdefault(arm, []).append(r)
                print(f"{arm:10s} c={c:3d}: {r}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        out.write_text(json.dumps(results, indent=2))  # partial results survive an interrupted run
    results["batch32"] = batch32_throughput(run_dir, sentences, args.threads)
    out.write_text(json.dumps(results, indent=2))
    if args.prune_amount > 0:  # compression: FFN pruning + short recovery fine-tune, on the same run
        from graftkit.export.prune import prune_run

        results["prune"] = prune_run(run_dir, Path(run_dir).with_name("fpb-pruned"), args.prune_amount,
                                     args.prune_steps, log=lambda m: print(m, flush=True))
        out.write_text(json.dumps(results, indent=2))
    print_tables(results)


def print_tables(res: dict) -> None:
    print("\n| arm | concurrency | requests | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|")
    for arm, rows in res["load"].items():
        for r in rows:
            print(f"| {arm} | {r['concurrency']} | {r['requests']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} "
                  f"| {r['errors']} |")
    b = res["parity"]["backends"]
    print("\n| backend | test accuracy | macro F1 | max abs logits diff |\n|---|---|---|---|")
    for name, e in b.items():
        print(f"| {name} | {e['metrics'].get('accuracy', float('nan')):.4f} | {e['metrics']['macro_f1']:.4f} "
              f"| {e.get('logits_max_abs_diff', 0):.2e} |")
    for stage in ("before", "after_pruning", "after"):
        r = res.get("prune", {}).get(stage)
        if r:
            print(f"| prune {stage} | {r['parameters']:,} params | {r['weights_mb']} MB | {r['examples_per_second']} ex/s "
                  f"| acc {r['metrics'].get('accuracy', 0):.4f} |")
    bt = res["batch32"]
    print(f"\nbatch 32, {bt['threads']} threads, measured sgemm peak {bt['measured_sgemm_gflops']} GFLOP/s")
    for name, e in bt["arms"].items():
        print(f"| {name} | {e['sequences_per_s']} seq/s | {e['gflops']} GFLOP/s | {e['fraction_of_sgemm_peak']:.1%} |")


if __name__ == "__main__":
    main()
