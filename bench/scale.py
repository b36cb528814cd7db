"""Scale-out benchmark: training throughput with 1 vs 2 processes, serving throughput with 1 vs 2 workers.

Training: ``graftkit train configs/scale-ddp.yaml`` (bundled MiniLM, examples/financial_news.csv,
max_length 64) for a fixed number of optimizer steps at the same global batch (32 = 1 x 32 or
2 x 16), no evaluation during training. Throughput is the Trainer's own ``train_samples_per_second``
(global samples / train_runtime, startup and final evaluation excluded); wall is the whole command.

Serving: the 1-process run from above served by ``graftkit serve --workers N`` (and, with
``--ray``, by ``graftkit serve --ray --replicas 2``); load from the deployment benchmark's load
generator (``bench/serve_load.py: load``: closed loop, one sentence per request, asyncio httpx
client in this process, sharing the same 2 cores).

    flock /tmp/graftkit-bench.lock python bench/scale.py > bench/out/scale.log 2>&1

Writes bench/out/scale.json and prints Markdown tables.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import common
from bench.serve_load import KEY, load


def train_once(work: Path, nproc: int, steps: int, global_batch: int, threads: int | None = None) -> dict:
    name = f"train-{nproc}p"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if threads:  # torchrun already gives each of several processes 1 thread; this pins a single process too
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "graftkit", "train", "configs/scale-ddp.yaml", "--overwrite",
           "--set", f"name={name}", "--set", f"output_dir={work / 'runs'}",
           "--set", f"train.batch_size={global_batch // nproc}", "--set", f"train.max_steps={steps}",
           "--set", "train.eval_strategy=steps", "--set", "train.eval_steps=100000", "--set", "train.report_to=[]",
           "--set", "eval.plots=false"] + (["--nproc", str(nproc)] if nproc > 1 else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, env=env)
    wall = time.perf_counter() - t0
    metrics = json.loads((work / "runs" / name / "metrics.json").read_text())
    t = metrics["train"]
    return {"processes": nproc, "threads_per_process": threads or (1 if nproc > 1 else os.cpu_count()),
            "per_process_batch": global_batch // nproc, "steps": steps,
            "train_runtime_s": round(t["train_runtime"], 1), "samples_per_s": round(t["train_samples_per_second"], 1),
            "wall_s": round(wall, 1), "val_macro_f1": round(metrics["validation"]["macro_f1"], 3),
            "command": " ".join(c if " " not in c else repr(c) for c in cmd[1:])}


def start_server(run_dir: Path, port: int, mode: str, n: int) -> subprocess.Popen:
    threads = max(1, (os.cpu_count() or 2) // n)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_WAIT_POLICY": "PASSIVE",
           "OMP_NUM_THREADS": str(threads), "GRAFTKIT_API_KEYS": KEY,
           "GRAFTKIT_SERVE_RATE_LIMIT_PER_MINUTE": "100000000", "GRAFTKIT_SERVE_RATE_LIMIT_BURST": "100000000",
           "GRAFTKIT_RAY_NUM_CPUS": str(os.cpu_count() or 2), "GRAFTKIT_RAY_CPUS_PER_REPLICA": str(threads)}
    cmd = [sys.executable, "-m", "graftkit", "serve", str(run_dir), "--port", str(port), "--log-level", "warning",
           "--max-batch-size", "32", "--max-wait-ms", "5"]
    cmd += ["--ray", "--replicas", str(n)] if mode == "ray" else ["--workers", str(n), "--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{mode} x{n} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{mode} x{n} did not become ready")


def serve_arm(run_dir: Path, mode: str, n: int, sentences: list[str], requests: int, levels: list[int]) -> list:
    port = common.free_port()
    proc = start_server(run_dir, port, mode, n)
    rows = []
    try:
        asyncio.run(load(port, sentences, 100, 8))  # warm-up: every worker / replica has loaded and run once
        for c in levels:
            r = asyncio.run(load(port, sentences, requests, c))
            rows.append({"mode": mode, "n": n, **r})
            print(f"{mode} x{n} c={c}: {r}", flush=True)
    finally:
        proc.terminate()  # --ray: SIGTERM shuts Serve and Ray down
        proc.wait(timeout=120)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/graftkit-scale-bench"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--global-batch", type=int, default=32)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--ray", action="store_true", help="also measure Ray Serve with 2 replicas")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    res: dict = {"command": " ".join(sys.argv), "cpu": os.cpu_count(), "train": [], "serve": []}
    # interleaved and repeated: the machine is shared, so order effects show up as spread
    for nproc, threads in ((1, None), (2, None), (1, 1), (1, None), (2, None)):
        res["train"].append(train_once(args.work, nproc, args.steps, args.global_batch, threads))
        print(res["train"][-1], flush=True)
    with open(REPO / "examples" / "financial_news.csv", newline="", encoding="utf-8") as fh:
        sentences = [row["text"] for row in csv.DictReader(fh)]
    run_dir = args.work / "runs" / "train-1p"
    for mode, n in [("workers", 1), ("workers", 2)] + ([("ray", 2)] if args.ray else []):
        res["serve"] += serve_arm(run_dir, mode, n, sentences, args.requests, args.concurrency)
    (REPO / "bench" / "out" / "scale.json").write_text(json.dumps(res, indent=2))
    print("\n| processes x threads | per-process batch | steps | samples/s | train_runtime s | wall s |\n"
          "|---|---|---|---|---|---|")
    for r in res["train"]:
        print(f"| {r['processes']} x {r['threads_per_process']} | {r['per_process_batch']} | {r['steps']} | "
              f"{r['samples_per_s']} | "
              f"{r['train_runtime_s']} | {r['wall_s']} |")
    print("\n| server | concurrency | requests | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|")
    for r in res["serve"]:
        print(f"| {r['mode']} x{r['n']} | {r['concurrency']} | {r['requests']} | {r['rps']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['errors']} |")


if __name__ == "__main__":
    main()
