"""The monitor: batches of items → scored → stored → rules evaluated on an event-time grid → alerts.

Rules are evaluated at grid points ``t = k * step_s`` of event time, once every item before ``t``
is stored (the stream is in time order, so that is when an item at or after ``t`` arrives). Each
batch is one transaction: its items, the evaluations it completes, their alerts, the new
"evaluated until" mark and the outbox rows. A crash therefore leaves either all of a batch or
none of it, and a restart (replaying the same stream; stored ids are skipped) produces exactly
the rows and alerts of an uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from graftkit.apps.monitor.config import MonitorConfig
from graftkit.apps.monitor.deliver import WebhookSender, log_alert
from graftkit.apps.monitor.detect import AlertState, evaluate_rule, step
from graftkit.apps.monitor.metrics import MonitorMetrics
from graftkit.apps.monitor.scoring import Scored, Scorer
from graftkit.apps.monitor.sources import Flush, Item, Skip
from graftkit.apps.monitor.store import (
    METADATA,
    alerts,
    deliveries,
    existing_ids,
    get_progress,
    item_topics,
    items,
    off_topic_items,
    rule_states,
    set_progress,
    skipped,
    topic_rows,
)
from graftkit.apps.store import open_engine, with_retry

log = logging.getLogger("graftkit.monitor")
EVALUATED = "evaluated_until"


def skip_kind(reason: str) -> str:
    """A short, bounded category of a skip reason (a metric label)."""
    for kind in ("missing time", "unparseable time", "unparseable JSON", "empty text", "unreadable feed"):
        if reason.startswith(kind):
            return kind
    return "invalid"


class Monitor:
    """Score, store and watch a stream of items.

    Args:
        cfg: the monitor config.
        scorer: default ``Scorer(cfg)`` (loads the runs); tests may pass one built on fakes.
    """

    def __init__(self, cfg: MonitorConfig, scorer: Scorer | None = None):
        self.cfg = cfg
        self.engine = open_engine(cfg.store, METADATA, cfg.store_retries, cfg.store_backoff_s)
        self.metrics = MonitorMetrics()
        self.scorer = scorer or Scorer(cfg)
        self.stats: Counter = Counter()
        self._recent: dict[str, list[tuple[float, bool]]] | None = None  # see _rows_for
        self._lock = threading.Lock()  # one writer per process (the server ingests from several requests)
        self.sender = None
        if cfg.delivery.webhook:
            self.sender = WebhookSender(self.engine, cfg.store, cfg.delivery.webhook, self.metrics)
            self.sender.kick()  # deliveries a previous run left pending
        self._restore_gauges()

    # -- streams --------------------------------------------------------------------
    def run(self, stream: Iterable[Item | Skip | Flush], on_batch: Callable[[dict], None] | None = None) -> dict:
        """Consume a whole stream; returns counts (read, ingested, duplicates, skipped, alerts...).

        Items are stored ``batch_size`` at a time, and whenever a live source yields ``FLUSH``.
        """
        batch: list[Item] = []
        for x in stream:
            if isinstance(x, Flush):
                self._flush(batch, on_batch)
                batch = []
                continue
            self.stats["read"] += 1
            if isinstance(x, Skip):
                self.skip(x)
                continue
            batch.append(x)
            if len(batch) >= self.cfg.batch_size:
                self._flush(batch, on_batch)
                batch = []
        self._flush(batch, on_batch)
        return dict(self.stats)

    def _flush(self, batch: list[Item], on_batch) -> None:
        if batch:
            result = self.ingest(batch)
            if on_batch:
                on_batch(result)

    def skip(self, s: Skip) -> None:
        """Count, log and store one malformed record (idempotent: a replay stores it once)."""
        self.stats["skipped"] += 1
        self.metrics.skipped.labels(skip_kind(s.reason)).inc()
        log.warning("skipped %s: %s", s.where, s.reason)

        def write():
            with self.engine.begin() as conn:
                seen = conn.execute(select(skipped.c.where).where(
                    skipped.c.source == s.source, skipped.c.where == s.where[:300])).first()
                if not seen:
                    conn.execute(skipped.insert().values(source=s.source, where=s.where[:300], reason=s.reason,
                                                         at=time.time()))

        self._retry(write, what="record a skipped item")

    def _retry(self, fn, what: str):
        return with_retry(fn, self.cfg.store, self.cfg.store_retries, self.cfg.store_backoff_s, what)

    # -- one batch ------------------------------------------------------------------
    def ingest(self, batch: list[Item]) -> dict:
        """Score and store the new items of ``batch`` and evaluate the rules they complete.

        Returns:
            {"ingested", "duplicates", "off_topic" (items that fit none of the topics), "events": [alert event
            dicts]}.

        Raises:
            StoreError: the store stayed unreachable/locked through the retries (nothing of the batch stored).
        """
        with self._lock:
            unique: dict[str, Item] = {}
            for it in batch:
                unique.setdefault(it.id, it)

            def read():
                with self.engine.connect() as conn:
                    return existing_ids(conn, list(unique))

            stored = self._retry(read, what="read")
            new = [it for i, it in unique.items() if i not in stored]
            dup = len(batch) - len(new)
            scored = self.scorer.score(new) if new else []
            events = self._retry(lambda: self._commit(scored), what="store a batch")
        off_topic = sum(s.off_topic for s in scored)
        self.stats.update(ingested=len(new), duplicates=dup, off_topic=off_topic)
        self.metrics.ingested.inc(len(new))
        self.metrics.off_topic.inc(off_topic)
        self.metrics.duplicates.inc(dup)
        for ev in events:
            self._announce(ev)
        if events and self.sender:
            self.sender.kick()
        return {"ingested": len(new), "duplicates": dup, "off_topic": off_topic, "events": events}

    def _commit(self, scored: list[Scored]) -> list[dict]:
        self._pending_recent = None
        with self.engine.begin() as conn:
            stored = existing_ids(conn, [s.item.id for s in scored])  # another writer may have stored some
            fresh = [s for s in scored if s.item.id not in stored]
            now = time.time()
            if fresh:
                conn.execute(items.insert(), [
                    {"id": s.item.id, "time": s.item.time, "source": s.item.source, "text": s.item.text,
                     "entity": s.item.entity, "label": s.label, "negative_score": s.negative_score,
                     "negative": s.negative, "ingested_at": now} for s in fresh])
                tagged = [{"item_id": s.item.id, "topic": t[:200], "time": s.item.time, "negative": s.negative}
                          for s in fresh for t in s.topics]
                if tagged:
                    conn.execute(item_topics.insert(), tagged)
                off = [{"item_id": s.item.id, "time": s.item.time, "negative": s.negative}
                       for s in fresh if s.off_topic]
                if off:
                    conn.execute(off_topic_items.insert(), off)
            events = self._detect(conn, fresh)
        if self._pending_recent is not None:  # only a committed batch enters the in-memory rows
            self._recent = self._pending_recent
        return events

    # -- detection ------------------------------------------------------------------
    def _detect(self, conn: Connection, fresh: list[Scored]) -> list[dict]:
        det = self.cfg.detection
        done = get_progress(conn, EVALUATED)
        if fresh and done is not None:
            late = sum(1 for s in fresh if s.item.time < done)
            if late:  # already-evaluated windows are not re-opened: alerts never change after the fact
                self.stats["late"] += late
                log.warning("%d item(s) arrived after their time was evaluated; stored, not re-evaluated", late)
        if not fresh and done is None:
            return []
        watermark = max([s.item.time for s in fresh] + ([done] if done is not None else []))
        first = done + det.step_s if done is not None else (math.floor(min(s.item.time for s in fresh) / det.step_s) + 1) * det.step_s
        grid = np.arange(first, watermark + det.step_s * 1e-9, det.step_s)
        if not grid.size:
            return []
        horizon = max(r.window_s + r.baseline_s for r in det.rules)
        by_topic = self._rows_for(conn, fresh, float(grid[0]) - horizon)
        states = {(r.topic, r.rule): AlertState(r.state, r.alert_id, r.quiet, r.until)
                  for r in conn.execute(select(rule_states))}
        events = self._walk(conn, grid, horizon, by_topic, states)
        set_progress(conn, EVALUATED, float(grid[-1]))
        self.metrics.event_time.set(float(grid[-1]))
        return events

    def _rows_for(self, conn: Connection, fresh: list[Scored], since: float) -> dict[str, list[tuple[float, bool]]]:
        """(time, negative) per topic since ``since``: read from the store once, then kept in memory.

        The store is read on the first batch only (inside this transaction, so it includes ``fresh``);
        later batches add their fresh items to the rows kept from committed batches. This assumes one
        writing process per store, which ``graftkit monitor`` and the server each are.
        """
        if self._recent is None:
            rows: dict[str, list[tuple[float, bool]]] = defaultdict(list)
            for topic, t, neg in topic_rows(conn, since, math.inf):
                rows[topic].append((t, bool(neg)))
        else:
            rows = defaultdict(list, {tp: list(r) for tp, r in self._recent.items()})
            for s in fresh:
                for tp in s.topics:
                    rows[tp[:200]].append((s.item.time, s.negative))
        for tp in list(rows):
            rows[tp] = sorted(r for r in rows[tp] if r[0] >= since)
            if not rows[tp]:
                del rows[tp]
        self._pending_recent = rows
        return rows

    def _walk(self, conn, grid, horizon, by_topic, states) -> list[dict]:
        det = self.cfg.detection
        arrays = {tp: (np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=bool))
                  for tp, rows in by_topic.items()}
        touched: dict[tuple[str, str], AlertState] = {}
        events: list[dict] = []
        for t in map(float, grid):
            active = {tp for tp, (times, _) in arrays.items()
                      if np.searchsorted(times, t) > np.searchsorted(times, t - horizon)}
            active |= {tp for (tp, _), st in states.items() if st.state != "idle"}
            for topic in sorted(active):
                times, neg = arrays.get(topic, (np.zeros(0), np.zeros(0, dtype=bool)))
                lo, hi = np.searchsorted(times, t - horizon), np.searchsorted(times, t)
                for rule in det.rules:
                    res = evaluate_rule(rule, t, times[lo:hi], neg[lo:hi])
                    key = (topic, rule.name)
                    st, ev = step(states.get(key, AlertState()), res.fires, t, det.cooldown_s, det.resolve_after)
                    st = self._apply(conn, key, st, ev, res, t, events)
                    states[key] = touched[key] = st
                    self.metrics.rule_value.labels(topic, rule.name).set(res.value)
                    self.metrics.rule_score.labels(topic, rule.name).set(res.score)
        for (topic, rule), st in touched.items():
            conn.execute(rule_states.delete().where(rule_states.c.topic == topic, rule_states.c.rule == rule))
            if st.state != "idle":
                conn.execute(rule_states.insert().values(topic=topic, rule=rule, state=st.state, alert_id=st.alert_id,
                                                         quiet=st.quiet, until=st.until))
        return events

    def _apply(self, conn, key, st: AlertState, ev: str | None, res, t: float, events: list[dict]) -> AlertState:
        topic, rule = key
        if ev == "open":
            row = {"topic": topic, "rule": rule, "state": "open", "opened_at": t, "resolved_at": None,
                   "value": res.value, "baseline": res.baseline, "score": res.score, "count": res.count,
                   "peak": res.score}
            alert_id = conn.execute(alerts.insert().values(**row)).inserted_primary_key[0]
            st = AlertState(st.state, int(alert_id), st.quiet, st.until)
            events.append(self._outbox(conn, {**row, "id": int(alert_id)}, "opened"))
        elif ev == "resolve":
            conn.execute(alerts.update().where(alerts.c.id == st.alert_id).values(state="resolved", resolved_at=t))
            row = dict(conn.execute(select(alerts).where(alerts.c.id == st.alert_id)).first()._mapping)
            events.append(self._outbox(conn, row, "resolved"))
        elif st.state == "open" and res.fires:
            conn.execute(alerts.update().where(alerts.c.id == st.alert_id, alerts.c.peak < res.score)
                         .values(peak=res.score))
        return st

    def _outbox(self, conn, alert: dict, event: str) -> dict:
        if self.cfg.delivery.webhook:
            conn.execute(deliveries.insert().values(alert_id=alert["id"], event=event, channel="webhook",
                                                    status="pending", attempts=0, updated_at=time.time()))
        return {"event": event, "alert": alert}

    def _announce(self, ev: dict) -> None:
        a = ev["alert"]
        self.stats[f"alerts_{ev['event']}"] += 1
        self.metrics.alerts.labels(a["topic"], a["rule"], ev["event"]).inc()
        self.metrics.open_alerts.labels(a["topic"], a["rule"]).set(1 if ev["event"] == "opened" else 0)
        if self.cfg.delivery.log:
            log_alert(a, ev["event"])

    def _restore_gauges(self) -> None:
        with self.engine.connect() as conn:
            for r in conn.execute(select(alerts.c.topic, alerts.c.rule).where(alerts.c.state == "open")):
                self.metrics.open_alerts.labels(r.topic, r.rule).set(1)

    def close(self) -> None:
        """Finish pending webhook deliveries and release the store."""
        if self.sender:
            self.sender.close()
        self.engine.dispose()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summary_line(stats: dict) -> str:
    """The one-line summary printed at the end of a run."""
    return json.dumps({k: stats.get(k, 0) for k in ("read", "ingested", "duplicates", "off_topic", "skipped", "late",
                                                   "alerts_opened", "alerts_resolved")})
