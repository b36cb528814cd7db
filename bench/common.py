"""Shared helpers for benchmarks: real datasets from ../shared/data and process resource usage."""
from __future__ import annotations

import csv
import random
import resource
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


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
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
