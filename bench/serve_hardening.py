"""Serving after hardening: naive endpoint vs graftkit torch / ONNX fp32 / ONNX int8 / int8 x2 workers
at several concurrency levels plus one overload level, all in one run; then a per-request time breakdown.

Each arm is a fresh server process on 127.0.0.1 (graftkit: `graftkit serve` with its defaults: idle
dispatch, max_queue 64 here, request_timeout_s 10); the load generator is an asyncio aiohttp client in this
process (closed loop: each of the N client tasks sends its next one-sentence request when the previous
answer arrives). 503s (queue full, with Retry-After) are counted apart from other errors and timeouts.

    flock /tmp/graftkit-bench.lock python bench/serve_hardening.py --requests 200 > bench/out/serve_hardening.log 2>&1

Writes bench/out/serve_hardening.json and prints Markdown tables.
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
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import common
from bench.serve_load import KEY, train_run

ARMS = {"torch": ("torch", "fp32", 1), "onnx-fp32": ("onnx", "fp32", 1), "onnx-int8": ("onnx", "int8", 1),
        "onnx-int8-x2": ("onnx", "int8", 2)}


def start_server(arm: str, run_dir: Path, port: int, threads: int, max_queue: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_WAIT_POLICY": "PASSIVE"}
    if arm == "naive":
        env.update({"NAIVE_MODEL_DIR": str(run_dir), "OMP_NUM_THREADS": str(threads)})
        cmd = [sys.executable, "-m", "uvicorn", "bench.naive_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
    else:
        backend, precision, workers = ARMS[arm]
        per_worker = max(1, threads // workers)
        env.update({"GRAFTKIT_API_KEYS": KEY, "GRAFTKIT_SERVE_RATE_LIMIT_PER_MINUTE": "100000000",
                    "GRAFTKIT_SERVE_RATE_LIMIT_BURST": "100000000", "OMP_NUM_THREADS": str(per_worker)})
        cmd = [sys.executable, "-c", "from graftkit.cli import app; app()", "serve", str(run_dir),
               "--backend", backend, "--precision", precision, "--port", str(port), "--threads", str(per_worker),
               "--workers", str(workers), "--max-queue", str(max_queue), "--request-timeout-s", "10",
               "--log-level", "warning"]
    errlog = REPO / "bench" / "out" / f"serve_hardening-{arm}.stderr"
    url = f"http://127.0.0.1:{port}" + ("/docs" if arm == "naive" else "/readyz")
    return common.start_server(arm, cmd, env, REPO, url, errlog)


async def load(port: int, sentences: list[str], n: int, concurrency: int, timeout: float = 60) -> dict:
    """Closed-loop load; latencies of 200s only, statuses counted (``timeout`` = a client timeout).

    The client is aiohttp because it shares the two cores with the server: on a trivial endpoint it spends about
    0.1 ms of CPU per request where httpx's AsyncClient spends 1.8 ms, which at 250 requests/s is half a core
    taken from the server under test. ``client_cpu_share`` is the CPU this process used over the level, as a
    share of all cores."""
    import aiohttp

    latencies, statuses = [], Counter()
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector, headers={"X-API-Key": KEY},
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as client:
        async def worker():
            for i in counter:
                t0 = time.perf_counter()
                try:
                    async with client.post("/v1/predict", json={"texts": [sentences[i % len(sentences)]]}) as r:
                        body = await r.json() if r.status == 200 else None
                        status = r.status if body is None or len(body["predictions"]) == 1 else 0
                except asyncio.TimeoutError:
                    status = "timeout"
                except aiohttp.ClientError:
                    status = "connection"
                statuses[status] += 1
                if status == 200:
                    latencies.append(time.perf_counter() - t0)

        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    lat = np.array(latencies or [float("nan")]) * 1000
    return {"requests": n, "concurrency": concurrency, "seconds": round(wall, 2),
            "ok_rps": round(statuses[200] / wall, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "ok": statuses[200], "503": statuses[503],
            "other_errors": sum(v for k, v in statuses.items() if k not in (200, 503)),
            "client_cpu_share": round(cpu / wall / (os.cpu_count() or 1), 3)}


def breakdown(run_dir: Path, sentences: list[str], threads: int, n: int = 200) -> dict:
    """Median per-request milliseconds of each stage graftkit runs for a one-text request (in-process)."""
    import torch

    from graftkit.inference.predictor import Predictor
    from graftkit.serve import schemas
    from graftkit.serve.security import KeyStore, hash_key

    torch.set_num_threads(threads)
    model = schemas.predict_request_model(64, 5000)
    keys = KeyStore([hash_key(KEY)])
    out = {}
    for arm, kwargs in (("torch", {"backend": "torch"}), ("onnx-int8", {"backend": "onnx", "precision": "int8",
                                                                         "threads": threads})):
        pred = Predictor(run_dir, **kwargs)
        times = {k: [] for k in ("parse", "auth", "tokenise", "model", "decode", "serialise")}
        for text in (sentences * 2)[:n]:
            body = json.dumps({"texts": [text]}).encode()
            t0 = time.perf_counter()
            req = model.model_validate_json(body)
            t1 = time.perf_counter()
            keys.identify(KEY)
            t2 = time.perf_counter()
            feats, ctx = pred.features(list(req.texts))  # the task's DecodesLogits.encode
            t3 = time.perf_counter()
            logits = pred.backend(feats)
            t4 = time.perf_counter()
            preds = pred.decoding.decode(logits, ctx)  # typed predictions
            t5 = time.perf_counter()
            schemas.PredictResponse(request_id="x", model="m",
                                    predictions=[p.to_dict() for p in preds]).model_dump_json()
            t6 = time.perf_counter()
            for k, a, b in (("parse", t0, t1), ("auth", t1, t2), ("tokenise", t2, t3), ("model", t3, t4),
                            ("decode", t4, t5), ("serialise", t5, t6)):
                times[k].append((b - a) * 1000)
        out[arm] = {k: round(float(np.median(v)), 3) for k, v in times.items()}
    return out


#: where a sampled stack's time goes: the first category whose marker is in the stack, innermost frame first
PROFILE_CATEGORIES = (
    ("model (onnxruntime / torch forward)", ("onnxruntime", "torch/nn/modules", "modeling_bert")),
    ("tokenise", ("tokenizers", "tokenization_utils")),
    ("decode + out-of-scope", ("graftkit/tasks/", "graftkit/modeling/ood")),
    ("batching (queue, futures)", ("graftkit/serve/batching.py",)),
    ("HTTP + event loop (uvicorn, starlette, pydantic, auth, logs)", ("uvicorn", "h11", "httptools", "starlette",
                                                                     "fastapi", "pydantic", "anyio", "asyncio",
                                                                     "graftkit/serve")),
)


def profile(pid: int, port: int, sentences: list[str], concurrency: int, seconds: int, out: Path) -> dict:
    """Sample the server (and its workers) with py-spy while ``concurrency`` clients load it; share of the
    on-CPU samples per category of PROFILE_CATEGORIES (the rest: 'other')."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses", "--rate", "100", "--format",
                            "raw", "--duration", str(seconds), "--nonblocking", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while spy.poll() is None:
        asyncio.run(load(port, sentences, 40 * concurrency, concurrency))
    counts = Counter()
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")[::-1]
        category = next((name for name, marks in PROFILE_CATEGORIES
                         if any(m in f for f in frames for m in marks)), "other")
        counts[category] += int(n)
    total = sum(counts.values()) or 1
    return {k: round(v / total, 3) for k, v in counts.most_common()}


def padding_ratio(run_dir: Path, sentences: list[str], batch: int = 32, chunk: int | None = None) -> float:
    """Padded tokens per real token when ``batch`` one-sentence requests share a model call (``chunk``: sorted
    by length and cut in calls of that many, as Predictor.predict_batch does)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run_dir)
    lengths = [len(ids) for ids in tok(sentences, truncation=True, max_length=128)["input_ids"]]
    padded = real = 0
    for start in range(0, len(lengths) - batch + 1, batch):
        group = lengths[start:start + batch]
        parts = [sorted(group)[i:i + chunk] for i in range(0, batch, chunk)] if chunk else [group]
        padded += sum(max(p) * len(p) for p in parts)
        real += sum(group)
    return round(padded / real, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/graftkit-serve-bench"))
    ap.add_argument("--run-dir", type=Path, help="use this finished run instead of training one")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--overload", type=int, default=128, help="clients at once for the overload level")
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--arms", nargs="+", default=["naive", *ARMS])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile-s", type=int, default=15, help="py-spy seconds per graftkit arm at c=32 (0: off)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    run_dir = args.run_dir or train_run(args.work, args.epochs, args.seed)
    if not (Path(run_dir) / "onnx" / "model.int8.onnx").is_file():
        from graftkit.export import export_run

        export_run(run_dir, quantize="int8", log=lambda m: print(m, flush=True))
    _, test_rows = common.fpb_split(args.seed)
    sentences = [t for t, _ in test_rows]
    random.Random(args.seed).shuffle(sentences)
    results = {"run_dir": str(run_dir), "cpu": os.cpu_count(), "command": " ".join(sys.argv), "load": {}}
    out = REPO / "bench" / "out" / "serve_hardening.json"
    for arm in args.arms:
        port = common.free_port()
        proc = start_server(arm, run_dir, port, args.threads, args.max_queue)
        try:
            asyncio.run(load(port, sentences, 40, 4))  # warm-up
            for c in args.concurrency:
                r = asyncio.run(load(port, sentences, args.requests, c))
                results["load"].setdefault(arm, []).append(r)
                print(f"{arm:13s} c={c:3d}: {r}", flush=True)
            if arm != "naive" and args.profile_s:
                results.setdefault("profile_c32", {})[arm] = profile(
                    proc.pid, port, sentences, 32, args.profile_s, REPO / "bench" / "out" / f"profile-{arm}.txt")
                print(f"{arm:13s} profile at c=32: {results['profile_c32'][arm]}", flush=True)
            r = asyncio.run(load(port, sentences, 3 * args.overload, args.overload, timeout=30))
            r["overload"] = True
            results["load"][arm].append(r)
            print(f"{arm:13s} overload c={args.overload}: {r}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        out.write_text(json.dumps(results, indent=2))
    results["breakdown_ms"] = breakdown(run_dir, sentences, args.threads)
    results["padding_c32"] = {"one call": padding_ratio(run_dir, sentences),
                              "sorted, calls of 8": padding_ratio(run_dir, sentences, chunk=8)}
    out.write_text(json.dumps(results, indent=2))
    print_tables(results)


def print_tables(res: dict) -> None:
    print("\n| arm | clients | requests | ok req/s | p50 ms | p99 ms | 503 | other errors/timeouts | client CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, rows in res["load"].items():
        for r in rows:
            level = f"{r['concurrency']} (overload)" if r.get("overload") else str(r["concurrency"])
            print(f"| {arm} | {level} | {r['requests']} | {r['ok_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['503']} "
                  f"| {r['other_errors']} | {r.get('client_cpu_share', 0):.0%} |")
    print("\n| stage (median ms, one text) | " + " | ".join(res["breakdown_ms"]) + " |")
    print("|---|" + "---|" * len(res["breakdown_ms"]))
    stages = next(iter(res["breakdown_ms"].values()))
    for stage in stages:
        print(f"| {stage} | " + " | ".join(str(v[stage]) for v in res["breakdown_ms"].values()) + " |")
    for arm, shares in res.get("profile_c32", {}).items():
        print(f"\n{arm} at c=32, share of on-CPU samples: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    print(f"\npadded tokens per real token at 32: {res.get('padding_c32')}")


if __name__ == "__main__":
    main()
