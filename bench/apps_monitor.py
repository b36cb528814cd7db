"""Monitor benchmark: ingest throughput (scored + stored, SQLite) and the planted surge's detection delay.

Two arms over the same demo stream (Financial PhraseBank sentences; synthetic times/companies/surge), one
invocation, same store kind and rules (configs/monitor-demo.yaml):
  - minilm: the bundled MiniLM fine-tuned on Financial PhraseBank sentences that are NOT in the stream
    (Sentences_66Agree minus Sentences_AllAgree; the stream uses Sentences_AllAgree);
  - gold:   the sentences' human labels (no model) — the store + detection cost alone, and the delay a
    perfect classifier would give.

    python bench/apps_monitor.py --epochs 1 --hours 48

Writes bench/out/apps-monitor.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

REPO = Path(__file__).resolve().parents[1]


def train_sentiment(tmp: Path, epochs: float, seed: int) -> Path:
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    stream_sents = {s for s, _ in common.load_financial_phrasebank("Sentences_AllAgree.txt")}
    rows = [(s, lab) for s, lab in common.load_financial_phrasebank("Sentences_66Agree.txt") if s not in stream_sents]
    train_csv = common.write_csv(tmp / "train.csv", rows)
    cfg = config_from_dict({
        "name": "fpb-sentiment", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": 64, "split": {"validation": 0.1, "test": 0.1, "seed": seed}},
        "model": {"name_or_path": "bundled:minilm"}, "task": {"type": "classification"},
        "train": {"epochs": epochs, "batch_size": 16, "learning_rate": 5e-5, "seed": seed, "report_to": [],
                  "early_stopping": None},
        "eval": {"plots": False}})
    return train(cfg, log=lambda m: None).path


def run_arm(name: str, stream: Path, manifest: dict, run_dir: Path | None, tmp: Path, batch_size: int) -> dict:
    from graftkit.apps.monitor import Monitor, load_monitor_config
    from graftkit.apps.monitor.scoring import Scorer
    from graftkit.apps.monitor.sources import replay
    from graftkit.apps.monitor.store import list_alerts

    cfg = load_monitor_config(REPO / "configs" / "monitor-demo.yaml")
    cfg.store = f"sqlite:///{tmp / f'{name}.db'}"
    cfg.batch_size = batch_size
    records = [json.loads(line) for line in stream.read_text().splitlines()]
    if run_dir is None:
        gold = {r["text"]: r["gold"] for r in records}
        scorer = Scorer(cfg, load=lambda _: GoldLabels(gold))
    else:
        cfg.sentiment_run = str(run_dir)
        scorer = Scorer(cfg)
    with Monitor(cfg, scorer) as mon:
        t0 = time.perf_counter()
        stats = mon.run(replay(stream, cfg.fields))
        seconds = time.perf_counter() - t0
        alerts = list_alerts(mon.engine)
    surge = [a for a in alerts if a["topic"] == manifest["surge_company"]
             and manifest["surge_start"] <= a["opened_at"] <= manifest["surge_end"]]
    return {"arm": name, "items": stats["ingested"], "seconds": round(seconds, 1),
            "items_per_s": round(stats["ingested"] / seconds, 1), "alerts": len(alerts),
            "surge_alerts": len(surge), "false_alerts": len(alerts) - len(surge),
            "delay_min": round((surge[0]["opened_at"] - manifest["surge_start"]) / 60, 1) if surge else None}


LABELS = ["negative", "neutral", "positive"]


class GoldLabels:
    """A Predictor stand-in answering each sentence's human label: a single-label classification task (the
    Scorer asks it for ``ScoresLabels``) and typed predictions."""

    def __init__(self, gold: dict[str, str]):
        from graftkit.tasks import TASKS

        self.gold = gold
        self.task = TASKS.get("classification")()
        self.task.load_state({"labels": LABELS, "multi_label": False})

    def predict(self, texts, batch_size=64):
        from graftkit.tasks.predictions import LabelPrediction

        return [LabelPrediction(self.gold[t], 1.0, {lab: float(lab == self.gold[t]) for lab in LABELS})
                for t in texts]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--hours", type=float, default=48.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", type=Path, help="reuse a trained sentiment run instead of training one")
    args = p.parse_args()
    from graftkit.apps.monitor.demo import DemoSpec, write_demo

    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    spec = DemoSpec(hours=args.hours, surge_start=args.hours * 0.75, seed=args.seed)
    manifest = write_demo(common.SHARED / "financial_phrasebank" / "Sentences_AllAgree.txt", tmp / "stream.jsonl", spec)
    t0 = time.perf_counter()
    run_dir = args.run or train_sentiment(tmp, args.epochs, args.seed)
    train_s = time.perf_counter() - t0
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text()) if (Path(run_dir) / "metrics.json").exists() else {}
    rows = [run_arm("gold", tmp / "stream.jsonl", manifest, None, tmp, args.batch_size),
            run_arm("minilm", tmp / "stream.jsonl", manifest, Path(run_dir), tmp, args.batch_size)]
    out = {"spec": manifest["spec"], "items": manifest["items"], "train_seconds": round(train_s, 1),
           "sentiment_metrics": metrics.get("test", metrics), "rows": rows}
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "apps-monitor.json").write_text(json.dumps(out, indent=2))
    print("| scorer | items | seconds | items/s | alerts | surge alerts | false alerts | detection delay (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {r['items']} | {r['seconds']} | {r['items_per_s']} | {r['alerts']} | {r['surge_alerts']} "
              f"| {r['false_alerts']} | {r['delay_min']} |")


if __name__ == "__main__":
    main()
