"""A replay stream for the monitor demo: labelled sentences, synthetic times and companies.

The sentences come from a labelled file: the repository's ``examples/financial_news.csv`` (synthetic
sentences), or Financial PhraseBank's real ones (Malo et al. 2014). The timestamps, the company tags and the
planted surge are synthetic: every record says so in its ``synthetic`` field. Items
arrive as a Poisson process per company; during the surge one company gets ``surge_rate`` times
its usual volume with ``surge_negative`` of it negative, so a working monitor raises one alert
for that company shortly after ``surge_start``.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from graftkit.data.readers import read_rows
from graftkit.errors import DataError
from graftkit.io import write_json, write_text

SYNTHETIC = "timestamps, company tags and the surge are synthetic; sentence and label are from {source}"
LABELS = ("negative", "neutral", "positive")
COMPANIES = ("ACME", "BOLT", "CRUX", "DYNA", "EXPO", "FLUX", "GRID", "HALO")


@dataclass
class DemoSpec:
    """What to generate (all times in hours from ``start``)."""

    hours: float = 48.0
    companies: int = 4
    per_hour: float = 60.0  # items per company per hour
    surge_company: str = "BOLT"
    surge_start: float = 36.0
    surge_hours: float = 2.0
    surge_rate: float = 2.0
    surge_negative: float = 0.8
    background_negative: float | None = None  # share of negative items outside the surge (None: the file's share)
    pool: int | None = None  # use only this many sentences per sentiment (small test models can learn them)
    start: str = "2024-03-04T00:00:00+00:00"
    seed: int = 0


def read_phrasebank(path: str | Path) -> list[tuple[str, str]]:
    """(sentence, label) pairs of a Financial PhraseBank ``Sentences_*.txt`` file (``sentence@label`` lines)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # the 50/66/75 % files are Latin-1
        text = raw.decode("latin-1")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            sent, sep, label = line.rpartition("@")
            if not sep or label.strip() not in ("negative", "neutral", "positive"):
                raise DataError(str(path), "expected 'sentence@negative|neutral|positive'", line=n)
            out.append((sent.strip(), label.strip()))
    return out


def read_sentences(path: str | Path) -> list[tuple[str, str]]:
    """(sentence, label) pairs: a Financial PhraseBank ``.txt`` file, else any file of graftkit's row readers
    (CSV, TSV, JSONL, ...) with ``text`` and ``label`` columns; a label other than negative/neutral/positive is
    an error naming its line."""
    if Path(path).suffix == ".txt":
        return read_phrasebank(path)
    out = []
    for row in read_rows(path):
        text, label = str(row.values.get("text") or "").strip(), str(row.values.get("label") or "").strip()
        if not text or label not in LABELS:
            raise DataError(row.path, "expected a text and a label of negative|neutral|positive in columns 'text' "
                            "and 'label'", line=row.line)
        out.append((text, label))
    return out


def make_stream(sentences: list[tuple[str, str]], spec: DemoSpec, source: str = "Financial PhraseBank") -> list[dict]:
    """The demo records in time order."""
    rng = random.Random(spec.seed)
    neg = [s for s in sentences if s[1] == "negative"]
    other = [s for s in sentences if s[1] != "negative"]
    if spec.pool:
        neg, other = rng.sample(neg, min(spec.pool, len(neg))), rng.sample(other, min(spec.pool, len(other)))
    background = spec.background_negative
    if background is None:
        background = len([s for s in sentences if s[1] == "negative"]) / len(sentences)
    start = datetime.fromisoformat(spec.start).timestamp()
    companies = list(COMPANIES[:spec.companies])
    if spec.surge_company not in companies:
        companies[-1] = spec.surge_company
    events: list[tuple[float, str, bool]] = []
    for company in companies:
        t = 0.0
        while True:
            in_surge = company == spec.surge_company and spec.surge_start <= t < spec.surge_start + spec.surge_hours
            t += rng.expovariate(spec.per_hour * (spec.surge_rate if in_surge else 1.0))
            if t >= spec.hours:
                break
            events.append((t, company, in_surge))
    events.sort()
    records = []
    for n, (t, company, in_surge) in enumerate(events, 1):
        p_neg = spec.surge_negative if in_surge else background
        sent, label = rng.choice(neg) if rng.random() < p_neg else rng.choice(other)
        when = datetime.fromtimestamp(start + t * 3600, tz=timezone.utc).isoformat().replace("+00:00", "Z")
        records.append({"id": f"demo-{n:06d}", "time": when, "source": "demo-newswire", "entity": company,
                        "text": sent, "gold": label, "synthetic": SYNTHETIC.format(source=source)})
    return records


def write_demo(sentences_file: str | Path, out: str | Path, spec: DemoSpec) -> dict:
    """Write the stream (JSONL) and ``<out>.manifest.json`` (the spec and the surge's absolute times)."""
    records = make_stream(read_sentences(sentences_file), spec, source=Path(sentences_file).name)
    write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    start = datetime.fromisoformat(spec.start).timestamp()
    manifest = {"stream": str(out), "items": len(records), "sentences": str(sentences_file),
                "note": SYNTHETIC.format(source=Path(sentences_file).name),
                "spec": asdict(spec), "surge_company": spec.surge_company,
                "surge_start": start + spec.surge_start * 3600,
                "surge_end": start + (spec.surge_start + spec.surge_hours) * 3600}
    write_json(Path(str(out) + ".manifest.json"), manifest)
    return manifest
