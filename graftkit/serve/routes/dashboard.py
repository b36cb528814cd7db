"""``GET /dashboard`` (auto-refreshing page) and ``GET /v1/monitor/summary`` (the JSON it draws)."""
import asyncio

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from graftkit.apps.monitor import report
from graftkit.apps.monitor.store import latest_negative, off_topic_summary, topic_summary, topic_time_span
from graftkit.errors import ConfigError, GraftkitError
from graftkit.serve.app_pages import DASHBOARD_HTML
from graftkit.serve.app_deps import application, require_key

router = APIRouter()

# One trend has one point per bucket per topic: these bounds keep a request's work and memory small
# (a 1-second bucket over a year of data would be 31 million points per topic).
MIN_BUCKET_S, MAX_BUCKET_S = 60.0, 30 * 86400.0
MAX_TREND_BUCKETS = 5000


def bucket_seconds(bucket: str) -> float:
    """``bucket`` in seconds, within [1m, 30d].

    Raises:
        ConfigError: not a duration, or outside the bounds (the message names the parameter).
    """
    try:
        step = report.parse_duration(bucket)
    except ConfigError as e:
        raise ConfigError(f"bucket: {e}") from None
    if not MIN_BUCKET_S <= step <= MAX_BUCKET_S:
        raise ConfigError(f"bucket: {bucket!r} is out of range; give a duration from 1m to 30d")
    return step


def check_bucket_count(engine, start: float | None, step: float, bucket: str) -> None:
    """Refuse a bucket so small for the stored time span that a trend would have over MAX_TREND_BUCKETS points."""
    span = topic_time_span(engine, start)
    if span is not None and (span[1] - span[0]) / step > MAX_TREND_BUCKETS:
        raise ConfigError(f"bucket: {bucket!r} gives over {MAX_TREND_BUCKETS} points for this time span; "
                          "use a larger bucket or a shorter since")


def summary(monitor, since: str, bucket: str, topics: int) -> dict:
    """Topics, alerts, latest negative items, items that fit no topic, and one trend series per top topic."""
    engine = monitor.engine
    start = report.resolve_since(since, engine)
    step = bucket_seconds(bucket)
    check_bucket_count(engine, start, step, bucket)
    tops = topic_summary(engine, start)[:topics]
    return {"since": start, "bucket_s": step, "topics": tops,
            "alerts": report.alert_rows(engine, start)[:100],
            "negative": latest_negative(engine, 20), "off_topic": off_topic_summary(engine, start),
            "trends": [report.trend(engine, t["topic"], step, start) for t in tops]}


@router.get("/v1/monitor/summary", summary="What the dashboard shows, as JSON")
async def monitor_summary(request: Request, since: str = Query("48h"), bucket: str = Query("1h"),
                          topics: int = Query(6, ge=1, le=50), key_id: str = Depends(require_key)):
    try:
        bucket_seconds(bucket)  # checked before any work, so a bad value costs no store query
        return await asyncio.to_thread(summary, application(request), since, bucket, topics)
    except GraftkitError as e:  # a bad --since / bucket value
        raise HTTPException(422, str(e)) from None


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(refresh_s: int = Query(10, ge=1, le=3600)):
    return HTMLResponse(DASHBOARD_HTML.replace("{{REFRESH_S}}", str(refresh_s)))
