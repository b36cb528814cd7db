"""The shipped demo: the replay stream (the repository's examples/financial_news.csv, or Financial
PhraseBank) with configs/monitor-demo.yaml's rules raises exactly one alert, for the planted company, shortly after the planted surge starts. Sentiment comes
from the sentences' human labels (a stand-in predictor), so this checks the stream and the rules; the
model-driven path is tested in test_monitor.py and measured in bench/apps_monitor.py."""
from __future__ import annotations

import json

from conftest import REPO

from graftkit.apps.monitor import Monitor, load_monitor_config
from graftkit.apps.monitor.demo import DemoSpec, write_demo
from graftkit.apps.monitor.scoring import Scorer
from graftkit.apps.monitor.sources import replay
from graftkit.apps.monitor.store import list_alerts
from graftkit.tasks import TASKS
from graftkit.tasks.predictions import LabelPrediction

LABELS = ["negative", "neutral", "positive"]


class GoldLabels:
    """A Predictor stand-in answering each sentence's Financial PhraseBank label: a real single-label
    classification task (so ``task.optional(ScoresLabels)`` and ``task.has`` answer as for a run) and typed
    predictions."""

    def __init__(self, gold: dict[str, str]):
        self.gold = gold
        self.task = TASKS.get("classification")()
        self.task.load_state({"labels": LABELS, "multi_label": False})

    def predict(self, texts, batch_size=64):
        return [LabelPrediction(self.gold[t], 1.0, {lab: float(lab == self.gold[t]) for lab in LABELS})
                for t in texts]


def _demo_alerts(sentences, spec: DemoSpec, tmp_path) -> tuple[list[dict], dict]:
    """The alerts configs/monitor-demo.yaml's rules raise on the demo stream of ``sentences``, and its manifest."""
    path = tmp_path / "demo.jsonl"
    manifest = write_demo(sentences, path, spec)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(f"synthetic; sentence and label are from {sentences.name}" in r["synthetic"] for r in records)
    cfg = load_monitor_config(REPO / "configs" / "monitor-demo.yaml")
    cfg.store = f"sqlite:///{tmp_path / 'demo.db'}"
    gold = {r["text"]: r["gold"] for r in records}
    with Monitor(cfg, Scorer(cfg, load=lambda run: GoldLabels(gold))) as mon:
        stats = mon.run(replay(path, cfg.fields))
        alerts = list_alerts(mon.engine)
    assert stats["ingested"] == manifest["items"]
    return alerts, manifest


def _one_alert_at_the_surge(alerts: list[dict], manifest: dict) -> None:
    assert [(a["topic"], a["rule"]) for a in alerts] == [("BOLT", "negative-share-1h")]
    delay = alerts[0]["opened_at"] - manifest["surge_start"]
    assert 0 <= delay <= 2700, delay


def test_demo_stream_raises_one_alert_at_the_planted_surge(shared_data, tmp_path):
    _one_alert_at_the_surge(*_demo_alerts(shared_data / "financial_phrasebank" / "Sentences_AllAgree.txt",
                                          DemoSpec(), tmp_path))


def test_the_readme_demo_stream_from_the_repository_alone(tmp_path):
    """The README's command: examples/financial_news.csv with a newswire's share of negative news."""
    _one_alert_at_the_surge(*_demo_alerts(REPO / "examples" / "financial_news.csv",
                                          DemoSpec(background_negative=0.12), tmp_path))


def test_a_demo_file_with_a_bad_label_names_its_line(tmp_path):
    import pytest

    from graftkit.errors import DataError

    bad = tmp_path / "s.csv"
    bad.write_text("text,label\nshares rose,positive\nshares fell,bearish\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.csv.*line 3|line 3.*s\.csv"):
        write_demo(bad, tmp_path / "out.jsonl", DemoSpec())
