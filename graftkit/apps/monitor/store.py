"""The monitor's tables (SQLAlchemy Core) and the reads the report, dashboard and detection need.

Items are keyed by id (or a content hash when the source gives none), so replaying a stream twice, or
restarting after a crash, stores each item once. Alert events are written to ``deliveries`` in the
same transaction as the alert (an outbox): a crash before the webhook fired leaves a pending row that
the next run delivers, so no alert is lost or sent from a half-written state.
"""
from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine

METADATA = MetaData()

items = Table(
    "monitor_items", METADATA,
    Column("id", String(200), primary_key=True),
    Column("time", Float, nullable=False, index=True),
    Column("source", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("entity", String(200)),
    Column("label", String(100), nullable=False),
    Column("negative_score", Float, nullable=False),
    Column("negative", Boolean, nullable=False),
    Column("ingested_at", Float, nullable=False),
)

item_topics = Table(
    "monitor_item_topics", METADATA,
    Column("item_id", String(200), ForeignKey("monitor_items.id"), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("time", Float, nullable=False),
    Column("negative", Boolean, nullable=False),
    Index("ix_monitor_topic_time", "topic", "time"),
)

# items a topic run's out-of-scope detector found to fit none of its topics (a table of its own, so a store
# written before it existed gains it on open: create_all adds tables, never columns)
off_topic_items = Table(
    "monitor_off_topic_items", METADATA,
    Column("item_id", String(200), ForeignKey("monitor_items.id"), primary_key=True),
    Column("time", Float, nullable=False, index=True),
    Column("negative", Boolean, nullable=False),
)

alerts = Table(
    "monitor_alerts", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("state", String(20), nullable=False),  # open | resolved
    Column("opened_at", Float, nullable=False),  # event time of the evaluation that fired
    Column("resolved_at", Float),
    Column("value", Float, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("peak", Float, nullable=False),
)

rule_states = Table(  # only topics+rules that are not idle
    "monitor_rule_states", METADATA,
    Column("topic", String(200), primary_key=True),
    Column("rule", String(100), primary_key=True),
    Column("state", String(20), nullable=False),  # open | cooldown
    Column("alert_id", Integer),
    Column("quiet", Integer, nullable=False),
    Column("until", Float),  # cooldown end (event time)
)

progress = Table(
    "monitor_progress", METADATA,
    Column("key", String(50), primary_key=True),
    Column("value", Float, nullable=False),
)

deliveries = Table(
    "monitor_deliveries", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("monitor_alerts.id"), nullable=False),
    Column("event", String(20), nullable=False),  # opened | resolved
    Column("channel", String(20), nullable=False),  # webhook
    Column("status", String(20), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", Float),
)

skipped = Table(
    "monitor_skipped", METADATA,
    Column("source", String(200), primary_key=True),
    Column("where", String(300), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
)


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The subset of ``ids`` already stored."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = ids[start:start + 500]
        found.update(conn.execute(select(items.c.id).where(items.c.id.in_(chunk))).scalars())
    return found


def get_progress(conn: Connection, key: str) -> float | None:
    return conn.execute(select(progress.c.value).where(progress.c.key == key)).scalar()


def set_progress(conn: Connection, key: str, value: float) -> None:
    if conn.execute(progress.update().where(progress.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(progress.insert().values(key=key, value=value))


def topic_rows(conn: Connection, start: float, end: float) -> list[tuple[str, float, bool]]:
    """(topic, time, negative) of every tagged item with start <= time < end."""
    q = select(item_topics.c.topic, item_topics.c.time, item_topics.c.negative).where(
        and_(item_topics.c.time >= start, item_topics.c.time < end))
    return [tuple(r) for r in conn.execute(q)]


def list_alerts(engine: Engine, since: float | None = None, state: str | None = None) -> list[dict]:
    """Alerts, newest first; ``since`` filters on opened_at (event time)."""
    q = select(alerts).order_by(alerts.c.opened_at.desc(), alerts.c.id.desc())
    if since is not None:
        q = q.where(alerts.c.opened_at >= since)
    if state:
        q = q.where(alerts.c.state == state)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def topic_summary(engine: Engine, since: float | None = None) -> list[dict]:
    """Per topic: items, negative items, negative share, first/last time, alerts (since ``since``)."""
    q = select(item_topics.c.topic, func.count(), func.sum(item_topics.c.negative.cast(Integer)),
               func.min(item_topics.c.time), func.max(item_topics.c.time)).group_by(item_topics.c.topic)
    aq = select(alerts.c.topic, func.count(), func.sum((alerts.c.state == "open").cast(Integer))).group_by(alerts.c.topic)
    if since is not None:
        q = q.where(item_topics.c.time >= since)
        aq = aq.where(alerts.c.opened_at >= since)
    with engine.connect() as conn:
        counts = {t: (n, o) for t, n, o in conn.execute(aq)}
        rows = list(conn.execute(q))
    return [{"topic": t, "items": n, "negative": int(neg or 0), "negative_share": (neg or 0) / n if n else 0.0,
             "first": lo, "last": hi, "alerts": counts.get(t, (0, 0))[0], "open_alerts": counts.get(t, (0, 0))[1]}
            for t, n, neg, lo, hi in sorted(rows, key=lambda r: -r[1])]


def topic_time_span(engine: Engine, since: float | None = None) -> tuple[float, float] | None:
    """(oldest, newest) time of the stored topic rows (since ``since``), or None when there are none."""
    q = select(func.min(item_topics.c.time), func.max(item_topics.c.time))
    if since is not None:
        q = q.where(item_topics.c.time >= since)
    with engine.connect() as conn:
        oldest, newest = conn.execute(q).one()
    return None if oldest is None else (oldest, newest)


def off_topic_summary(engine: Engine, since: float | None = None) -> dict:
    """Items that fit none of the topics (since ``since``): their count, negative count and the newest few."""
    q = select(func.count(), func.sum(off_topic_items.c.negative.cast(Integer))).select_from(off_topic_items)
    latest = (select(items.c.id, items.c.time, items.c.text)
              .join(off_topic_items, off_topic_items.c.item_id == items.c.id)
              .order_by(items.c.time.desc()).limit(5))
    if since is not None:
        q = q.where(off_topic_items.c.time >= since)
        latest = latest.where(items.c.time >= since)
    with engine.connect() as conn:
        n, neg = conn.execute(q).first()
        newest = [dict(r._mapping) for r in conn.execute(latest)]
    return {"items": int(n or 0), "negative": int(neg or 0), "latest": newest}


def latest_negative(engine: Engine, limit: int = 20) -> list[dict]:
    """The newest negative items (event time)."""
    q = (select(items.c.id, items.c.time, items.c.source, items.c.entity, items.c.text, items.c.negative_score)
         .where(items.c.negative).order_by(items.c.time.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def counts(engine: Engine) -> dict[str, int]:
    """Row counts of the main tables (for summaries and tests)."""
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(t)).scalar() or 0
                for name, t in (("items", items), ("alerts", alerts), ("skipped", skipped),
                                ("off_topic", off_topic_items))}
