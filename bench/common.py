"""Shared helpers for benchmarks: real datasets from ../shared/data and process resource usage."""
from __future__ import annotations

import csv
import json
import random
import resource
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_financial_phrasebank(name: str = "Sentences_AllAgree.txt") -> list[tuple[str, str]]:
    """(sentence, label) pairs from the `sentence@label` latin-1 file."""
    rows = []
    for line in (SHARED / "financial_phrasebank" / name).read_text(encoding="latin-1").splitlines():
        if line.strip():
            text, label = line.rsplit("@", 1)
            rows.append((text.strip(), label.strip()))
    return rows


def fpb_split(seed: int = 42, test: float = 0.2):
    """Seeded stratified 80/20 split of Financial PhraseBank (AllAgree)."""
    from sklearn.model_selection import train_test_split

    rows = load_financial_phrasebank()
    return train_test_split(rows, test_size=test, random_state=seed, stratify=[r[1] for r in rows])


def load_sst2(train_rows: int, seed: int = 42):
    """``train_rows`` sentences sampled (seeded) from SST-2 train, and the full dev set."""
    def read(name):
        with open(SHARED / "sst2" / name, encoding="utf-8", newline="") as fh:
            return [(r["text"], r["label"]) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]

    train = read("train.tsv")
    random.Random(seed).shuffle(train)
    return train[:train_rows], read("dev.tsv")


def load_banking77(train_rows: int = 0, seed: int = 42):
    """Banking77 (text, intent): ``train_rows`` sampled (seeded; 0 = all 10,003) from train, and the full test set."""
    def read(name):
        with open(SHARED / "banking77" / name, encoding="utf-8", newline="") as fh:
            return [(r["text"], r["category"]) for r in csv.DictReader(fh)]

    train = read("train.csv")
    random.Random(seed).shuffle(train)
    return train[:train_rows or len(train)], read("test.csv")


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_json(path: Path, data) -> Path:
    """A benchmark's results as indented JSON (values JSON cannot hold, such as paths, as strings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


@contextmanager
def measure():
    """Wall seconds, process CPU seconds (user+sys) and peak RSS (MiB) of the block."""
    out = {}
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    yield out
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out["peak_rss_mib"] = r1.ru_maxrss / 1024


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train_cpu_callback():
    """A TrainerCallback recording process CPU seconds between train begin and end (``.cpu_s``)."""
    from transformers import TrainerCallback

    class CpuTime(TrainerCallback):
        cpu_s = 0.0

        def on_train_begin(self, args, state, control, **kw):
            self._t0 = cpu_seconds()

        def on_train_end(self, args, state, control, **kw):
            self.cpu_s = cpu_seconds() - self._t0

    return CpuTime()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(name: str, cmd: list[str], env: dict, cwd: Path, ready_url: str, errlog: Path) -> subprocess.Popen:
    """Start a server process (stderr to ``errlog``, so a chatty server never blocks) and wait until
    ``ready_url`` answers 200; RuntimeError with the log's tail if it exits or never gets ready."""
    import httpx

    with open(errlog, "w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} server exited: {errlog.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{name} server did not become ready")


def mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` over seeds (sd 0 for one value), or an en dash for none."""
    import statistics

    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


class Results:
    """A benchmark's results by key, kept in a JSON file as each lands: a stopped run picks up where it was."""

    def __init__(self, path: Path, settings: dict):
        self.path, self.settings = path, settings
        self.results = json.loads(path.read_text())["results"] if path.is_file() else {}

    def get(self, key: str, compute) -> dict:
        if key not in self.results:
            self.results[key] = compute()
            print(key, self.results[key], flush=True)
            write_json(self.path, {"settings": self.settings, "results": self.results})
        return self.results[key]
