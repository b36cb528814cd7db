"""What the monitor found: a per-topic table, trend series, and a trend PNG per topic with alerts marked."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from graftkit.apps.monitor.sources import BadRecord, parse_time
from graftkit.apps.monitor.store import item_topics, list_alerts
from graftkit.errors import ConfigError
from graftkit.io import atomic_path

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def newest_time(engine: Engine) -> float | None:
    """The newest event time stored."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(item_topics.c.time))).scalar()


def resolve_since(since: str | None, engine: Engine) -> float | None:
    """``--since`` as epoch seconds: ISO-8601 / epoch, or a duration ('24h', '7d') back from the newest item.

    Durations count back from the newest stored event time, not the wall clock, so a report on a
    replayed (historical) stream means the same as on a live one.
    """
    if not since:
        return None
    m = _DURATION.match(since.strip())
    if m:
        newest = newest_time(engine)
        return None if newest is None else newest - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return parse_time(since)
    except BadRecord:
        raise ConfigError(f"--since {since!r}: give a duration like 24h / 7d / 30m, or an ISO-8601 time") from None


def fmt_time(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def trend(engine: Engine, topic: str, bucket_s: float = 3600, since: float | None = None) -> dict:
    """Per time bucket of one topic: start times, item counts, negative shares (NaN where empty)."""
    q = select(item_topics.c.time, item_topics.c.negative).where(item_topics.c.topic == topic)
    if since is not None:
        q = q.where(item_topics.c.time >= since)
    with engine.connect() as conn:
        rows = np.array([(t, float(n)) for t, n in conn.execute(q)], dtype=float).reshape(-1, 2)
    if not len(rows):
        return {"topic": topic, "start": [], "count": [], "negative_share": []}
    b = np.floor(rows[:, 0] / bucket_s).astype(np.int64)
    lo, hi = b.min(), b.max()
    count = np.bincount(b - lo, minlength=hi - lo + 1)
    neg = np.bincount(b - lo, weights=rows[:, 1], minlength=hi - lo + 1)
    share = np.where(count > 0, neg / np.maximum(count, 1), np.nan)
    return {"topic": topic, "start": [float(x * bucket_s) for x in range(lo, hi + 1)],
            "count": count.tolist(), "negative_share": [None if np.isnan(s) else float(s) for s in share]}


def trend_png(engine: Engine, topic: str, path: str | Path, bucket_s: float = 3600, since: float | None = None) -> Path:
    """Negative share (line) and volume (bars) over time for ``topic``; alert openings red, resolutions green."""
    from matplotlib.figure import (
        Figure,  # the object API: no pyplot, no global backend switch
    )

    series = trend(engine, topic, bucket_s, since)
    when = [datetime.fromtimestamp(t, tz=timezone.utc) for t in series["start"]]
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    vol = ax.twinx()
    vol.bar(when, series["count"], width=bucket_s / 86400, align="edge", color="#cfd8e3", label="items")
    vol.set_ylabel("items per bucket")
    ax.set_zorder(vol.get_zorder() + 1)
    ax.patch.set_visible(False)
    share = [np.nan if s is None else s for s in series["negative_share"]]
    ax.plot([w for w in when], share, color="#1f3b73", marker=".", label="negative share")
    ax.set_ylim(0, 1)
    ax.set_ylabel("negative share")
    for a in list_alerts(engine, since):
        if a["topic"] != topic:
            continue
        ax.axvline(datetime.fromtimestamp(a["opened_at"], tz=timezone.utc), color="#c62828", lw=2,
                   label=f"alert {a['id']} opened ({a['rule']})")
        if a["resolved_at"]:
            ax.axvline(datetime.fromtimestamp(a["resolved_at"], tz=timezone.utc), color="#2e7d32", ls="--",
                       label=f"alert {a['id']} resolved")
    ax.set_title(f"{topic}: negative share per {bucket_s / 3600:g} h (UTC)")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return Path(path)


def safe_name(topic: str) -> str:
    """A file name for a topic ('*' → 'all')."""
    return "all" if topic == "*" else re.sub(r"[^A-Za-z0-9._-]+", "_", topic)[:80] or "topic"


def alert_rows(engine: Engine, since: float | None) -> list[dict]:
    """Alerts since ``since`` (newest first), with readable times."""
    return [{**a, "opened": fmt_time(a["opened_at"]), "resolved": fmt_time(a["resolved_at"])}
            for a in list_alerts(engine, since)]



def parse_duration(text: str) -> float:
    """Seconds in '15m', '1h', '2d', '30s'."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"{text!r} is not a duration; use e.g. 30s, 15m, 1h, 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]
