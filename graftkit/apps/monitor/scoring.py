"""Batched scoring: sentiment from a classification run, topics from the item, an NER run or a topic run.

A topic run with an out-of-scope detector (``task.out_of_scope``) flags an item that fits none of its topics:
the item gets no topic and is counted as off topic, instead of being forced into the nearest one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from graftkit.apps.monitor.config import MonitorConfig
from graftkit.apps.monitor.sources import Item
from graftkit.errors import ConfigError
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import ScoresLabels, TagsEntities
from graftkit.tasks.predictions import LabelPrediction

#: what the topic run of each ``topics.source`` must do: tag entities, or score labels
TOPIC_SOURCES = {"ner": TagsEntities, "topic": ScoresLabels}


@dataclass(frozen=True)
class Scored:
    """An item with its predicted sentiment label, the probability of negative, and its topics; ``off_topic``: the
    topic run's detector found it fits none of the topics."""

    item: Item
    label: str
    negative_score: float
    negative: bool
    topics: tuple[str, ...]
    off_topic: bool = False


class Scorer:
    """Scores items in batches with the runs named in the monitor config.

    Args:
        cfg: the monitor config.
        load: ``run_dir -> inference object`` (default ``graftkit.inference.open_run``); tests pass fakes.
    """

    def __init__(self, cfg: MonitorConfig, load: Callable | None = None):
        if load is None:
            load = open_run
        self.cfg = cfg
        self.sentiment = load(cfg.sentiment_run)
        scores = self.sentiment.task.optional(ScoresLabels)
        labels = [str(x) for x in scores.labels] if scores else []
        missing = [lab for lab in cfg.negative_labels if lab not in labels]
        if labels and missing:
            raise ConfigError(f"negative_labels {missing} are not labels of {cfg.sentiment_run} (labels: {labels})")
        self.topic_model = load(cfg.topics.run) if cfg.topics.source != "entity" else None
        if self.topic_model is not None and not self.topic_model.task.has(TOPIC_SOURCES[cfg.topics.source]):
            raise ConfigError(f"topics.run {cfg.topics.run} is a {self.topic_model.task.label()} run; topics.source "
                              f"'{cfg.topics.source}' needs a run that {TOPIC_SOURCES[cfg.topics.source].summary}")

    def score(self, batch: Sequence[Item]) -> list[Scored]:
        """One ``Scored`` per item, in order (one model call per batch and model)."""
        texts = [it.text for it in batch]
        preds = self.sentiment.predict(texts, batch_size=max(len(texts), 1))
        topics, off_topic = self._topics(batch, texts)
        out = []
        for it, p, tops, off in zip(batch, preds, topics, off_topic):
            neg = sum(float(p.scores.get(lab, 0.0)) for lab in self.cfg.negative_labels)
            out.append(Scored(it, str(p.label), round(neg, 6), str(p.label) in self.cfg.negative_labels, tops, off))
        return out

    def _topics(self, batch: Sequence[Item], texts: list[str]) -> tuple[list[tuple[str, ...]], list[bool]]:
        """(the topics of each item, whether the topic run's detector flagged it as fitting none)."""
        tc = self.cfg.topics
        off_topic = [False] * len(batch)
        if tc.source == "entity":
            found = [[it.entity] if it.entity else [] for it in batch]
        else:
            preds = self.topic_model.predict(texts, batch_size=max(len(texts), 1))
            if self.topic_model.task.has(TagsEntities):
                found = [[e.text.strip() for e in p.entities if e.label in tc.entity_types] for p in preds]
            else:
                off_topic = [isinstance(p, LabelPrediction) and bool(p.out_of_scope) for p in preds]
                found = [[] if off else [lab for lab, s in p.scores.items() if s >= tc.min_score]
                         for p, off in zip(preds, off_topic)]
        if tc.overall:
            found = [f + ["*"] for f in found]
        return [tuple(sorted({t for t in f if t})) for f in found], off_topic
