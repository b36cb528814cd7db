"""Topics from a topic run with an out-of-scope detector: an item that fits none of the topics gets no topic and
is flagged off topic (stored, counted in the run's stats, Prometheus and the report), instead of being forced
into the nearest topic. Sentiment comes from a stand-in; the topic run is a tiny trained one."""
from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import select
from conftest import run_config, write_csv
from typer.testing import CliRunner

from graftkit.apps.monitor import Monitor
from graftkit.apps.monitor.config import monitor_config_from_dict
from graftkit.apps.monitor.scoring import Scorer
from graftkit.apps.monitor.sources import Item
from graftkit.apps.monitor.store import counts, item_topics, off_topic_items, off_topic_summary
from graftkit.inference.predictor import Predictor
from graftkit.serve.routes.dashboard import summary as dashboard_summary
from graftkit.inference.runs import open_run
from graftkit.tasks import TASKS
from graftkit.tasks.predictions import LabelPrediction

TOPICS = [["the central bank raised interest rates again", "rates"],
          ["bond yields rose after the rate decision", "rates"],
          ["the company reported record quarterly profit", "earnings"],
          ["net profit beat analyst forecasts", "earnings"]]
OFF_TOPIC = ["what is the capital of france", "my package never arrived", "how tall is mount everest",
             "reset my router password please"]


class Neutral:
    """A sentiment stand-in: every item neutral (this test is about topics)."""

    def __init__(self):
        self.task = TASKS.get("classification")()
        self.task.load_state({"labels": ["negative", "neutral"], "multi_label": False})

    def predict(self, texts, batch_size=64):
        return [LabelPrediction("neutral", 0.9, {"negative": 0.1, "neutral": 0.9}) for _ in texts]


@pytest.fixture(scope="module")
def topic_run(tmp_path_factory, tiny_model_dir):
    """A tiny topic run with a detector whose threshold is set between the items' scores, so some are flagged."""
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("topics")
    oos = [[t, "oos"] for t in OFF_TOPIC]
    data = write_csv(tmp / "train.csv", TOPICS * 6 + oos)
    cfg = run_config(tmp, tiny_model_dir, data, task={"type": "classification", "out_of_scope": {"label": "oos"}},
                     train={"epochs": 8, "learning_rate": 1e-2},
                     data={"validation": str(write_csv(tmp / "val.csv", TOPICS + oos)), "split": {"test": 0.0}})
    run = train(cfg, log=lambda m: None).path
    scores = sorted(p.out_of_scope_score for p in Predictor(run).predict([t for t, _ in TOPICS] + OFF_TOPIC))
    state = json.loads((run / "out_of_scope.json").read_text())
    state["threshold"] = (scores[3] + scores[4]) / 2  # half the items over it, whatever the tiny model learned
    (run / "out_of_scope.json").write_text(json.dumps(state))
    return run


def _tree(run, db, **extra) -> dict:
    return {"sentiment_run": "unused", "store": f"sqlite:///{db}", "negative_labels": ["negative"],
            "topics": {"source": "topic", "run": str(run), "min_score": 0.0, **extra}}


def test_items_that_fit_no_topic_are_flagged_not_forced(topic_run, tmp_path):
    texts = [t for t, _ in TOPICS] + OFF_TOPIC
    preds = Predictor(topic_run).predict(texts)
    flagged = {t for t, p in zip(texts, preds) if p.out_of_scope}
    assert 0 < len(flagged) < len(texts)
    cfg = monitor_config_from_dict(_tree(topic_run, tmp_path / "m.db", overall=True))
    scorer = Scorer(cfg, load=lambda run: Neutral() if run == "unused" else open_run(run))
    with Monitor(cfg, scorer) as mon:
        stats = mon.run(Item(1000.0 + n, "test", f"i{n}", t) for n, t in enumerate(texts))
        with mon.engine.connect() as conn:
            tagged = {}
            for item_id, topic in conn.execute(select(item_topics.c.item_id, item_topics.c.topic)):
                tagged.setdefault(texts[int(item_id[1:])], set()).add(topic)
            off_ids = {texts[int(r.item_id[1:])] for r in conn.execute(off_topic_items.select())}
        metrics = mon.metrics.render()[0].decode()
        summary = off_topic_summary(mon.engine)
        served = dashboard_summary(mon, "48h", "1h", 6)["off_topic"]  # what /v1/monitor/summary answers
        assert counts(mon.engine)["off_topic"] == len(flagged)
    assert off_ids == flagged and stats["off_topic"] == len(flagged) and summary["items"] == len(flagged)
    assert served["items"] == len(flagged) and {r["text"] for r in served["latest"]} <= flagged
    for t in texts:  # min_score 0: every label would be a topic; a flagged item has none but the overall '*'
        assert tagged[t] == ({"*"} if t in flagged else {"rates", "earnings", "*"}), t
    assert f"graftkit_monitor_items_off_topic_total {float(len(flagged))}" in metrics


def test_report_counts_off_topic_items(topic_run, tmp_path):
    from graftkit.cli.apps import monitor_app
    from graftkit.cli.main import friendly

    texts = [t for t, _ in TOPICS] + OFF_TOPIC
    flagged = sum(bool(p.out_of_scope) for p in Predictor(topic_run).predict(texts))
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text(yaml.safe_dump(_tree(topic_run, tmp_path / "m.db")))
    cfg = monitor_config_from_dict(_tree(topic_run, tmp_path / "m.db"))
    with Monitor(cfg, Scorer(cfg, load=lambda run: Neutral() if run == "unused" else open_run(run))) as mon:
        mon.run(Item(1000.0 + n, "test", f"i{n}", t) for n, t in enumerate(texts))
    res = CliRunner().invoke(monitor_app(friendly), ["report", str(cfg_file)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert f"off topic (the topic run's detector: fits none of the topics): {flagged} items, 0 negative" in res.output
