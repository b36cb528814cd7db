"""Generation serving at concurrency C: `graftkit serve` (POST /v1/generate, stream: true; static batching, or
continuous batching in the ``graftkit-continuous`` arm) against a naive FastAPI endpoint calling
``model.generate`` once per request (bench/naive_generate_app.py).

Both serve the same run folder: a small GPT-2 (random init, E2E BPE tokenizer) put through one
`graftkit train` step, with ``min_new_tokens = max_new_tokens`` written into its generation_config.json
so every request generates exactly the same number of tokens in every arm (greedy). Continuous batching does
not apply a minimum length, so with the ``graftkit-continuous`` arm the run has none: greedy decoding gives
each prompt the same tokens in every arm, stopping at EOS or ``max_new_tokens``, and tokens/s counts them. Prompts are E2E test
MRs. The client (asyncio + httpx, closed loop: each of C tasks sends its next request when the previous
answer ends) runs in this process on the same shared CPU. Time to first token: graftkit's first SSE
``token`` event; the naive endpoint cannot stream, so its TTFT is its whole response time.

    python bench/bench_generation_serve.py --concurrency 8 --requests 48 --new-tokens 32
    python bench/bench_generation_serve.py --concurrency 32 --requests 96 --arms naive graftkit graftkit-continuous

Writes bench/out/generation-serve.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import generation_common as gc

REPO = Path(__file__).resolve().parents[1]
# graftkit: streamed (SSE, TTFT = first token event); graftkit-whole: the same server, one JSON answer
ARMS = ("naive", "graftkit", "graftkit-whole", "graftkit-continuous")


def build_run(tmp: Path, new_tokens: int, layers: int, width: int, exact_length: bool = True) -> Path:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    model_dir = gc.random_gpt2(tmp / "gpt2", layers=layers, width=width)
    train_csv = gc.write_pairs(tmp / "train.csv", gc.train_rows()[:64])
    cfg = config_from_dict({
        "name": "serve-gen", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 128, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": model_dir},
        "task": {"type": "causal_lm", "prompt_column": "mr", "completion_column": "ref", "eval_samples": 0,
                 "generation": {"max_new_tokens": new_tokens}},
        "train": {"max_steps": 1, "batch_size": 8, "report_to": [], "early_stopping": None},
        "eval": {"plots": False, "save_predictions": False},
    })
    run = train(cfg, log=lambda s: None).path
    path = run / "generation_config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "max_new_tokens": new_tokens,
                                **({"min_new_tokens": new_tokens} if exact_length else {})}))
    return run


def start(arm: str, run: Path, port: int, threads: int, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads),
           # a load test, not a rate-limit test: the per-key limits (60/s) would answer 429 to a fast arm
           "GRAFTKIT_SERVE_RATE_LIMIT_PER_MINUTE": "100000000", "GRAFTKIT_SERVE_RATE_LIMIT_BURST": "100000000"}
    if arm == "naive":
        env["NAIVE_MODEL_DIR"] = str(run)
        cmd = [sys.executable, "-m", "uvicorn", "bench.naive_generate_app:app", "--port", str(port),
               "--log-level", "warning"]
        ready = f"http://127.0.0.1:{port}/docs"
    else:
        cmd = [sys.executable, "-m", "graftkit", "serve", str(run), "--port", str(port), "--allow-anonymous",
               "--threads", str(threads), "--max-batch-size", str(concurrency), "--max-wait-ms", "5",
               "--log-level", "warning", "--request-timeout-s", "600",
               "--generate-batching", "continuous" if arm == "graftkit-continuous" else "static"]
        ready = f"http://127.0.0.1:{port}/readyz"
    errlog = REPO / "bench" / "out" / f"generation-serve-{arm}.stderr"
    errlog.parent.mkdir(exist_ok=True)
    return common.start_server(arm, cmd, env, REPO, ready, errlog)


async def one(client, arm: str, url: str, prompt: str) -> tuple[float, float, int]:
    """(ttft seconds, total seconds, generated tokens) of one request."""
    t0 = time.perf_counter()
    if arm in ("naive", "graftkit-whole"):
        r = await client.post(url + ("/generate" if arm == "naive" else "/v1/generate"), json={"prompt": prompt})
        r.raise_for_status()
        total = time.perf_counter() - t0
        return total, total, r.json()["tokens"]
    ttft, tokens, event = None, 0, None
    async with client.stream("POST", url + "/v1/generate", json={"prompt": prompt, "stream": True}) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "token" and ttft is None:
                ttft = time.perf_counter() - t0
            elif line.startswith("data:") and event == "done":
                tokens = json.loads(line.split(":", 1)[1])["tokens"]
    return ttft, time.perf_counter() - t0, tokens


async def load(arm: str, url: str, prompts: list[str], concurrency: int) -> dict:
    import httpx

    queue, results, errors = list(prompts), [], 0

    async def worker(client):
        nonlocal errors
        while queue:
            prompt = queue.pop()
            try:
                results.append(await one(client, arm, url, prompt))
            except Exception:  # noqa: BLE001 - counted, the load goes on
                errors += 1

    async with httpx.AsyncClient(timeout=600) as client:
        await one(client, arm, url, prompts[0])  # warm-up, not timed
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    ttft = np.array([r[0] for r in results])
    tokens = sum(r[2] for r in results)
    return {"requests": len(results), "errors": errors, "wall_s": wall, "tokens": tokens,
            "tokens_per_s": tokens / wall, "ttft_p50_s": float(np.percentile(ttft, 50)),
            "ttft_p99_s": float(np.percentile(ttft, 99)),
            "latency_p99_s": float(np.percentile([r[1] for r in results], 99))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=48)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--arms", nargs="+", default=["naive", "graftkit"], choices=ARMS)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "generation-serve.json")
    args = p.parse_args()
    prompts = list(gc.test_groups(args.requests))[:args.requests]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(Path(tmp), args.new_tokens, args.layers, args.width,
                        exact_length="graftkit-continuous" not in args.arms)
        for arm in args.arms:
            port = common.free_port()
            proc = start(arm, run, port, args.threads, args.concurrency)
            try:
                results[arm] = asyncio.run(load(arm, f"http://127.0.0.1:{port}", prompts, args.concurrency))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    common.write_json(args.out, {"args": vars(args), "results": results})
    print("| arm | requests | errors | generated tokens/s | p50 TTFT s | p99 TTFT s | p99 latency s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm, r in results.items():
        print(f"| {arm} | {r['requests']} | {r['errors']} | {r['tokens_per_s']:.1f} | {r['ttft_p50_s']:.2f} | "
              f"{r['ttft_p99_s']:.2f} | {r['latency_p99_s']:.2f} |")
    for arm in results:
        print(f"{arm}: {results[arm]['tokens_per_s'] / results[args.arms[0]]['tokens_per_s']:.2f}x {args.arms[0]}")


if __name__ == "__main__":
    main()
