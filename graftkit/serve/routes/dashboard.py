"""``GET /dashboard`` (auto-refreshing page) and ``GET /v1/monitor/summary`` (the JSON it draws)."""
import asyncio

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from graftkit.apps.monitor import report
from graftkit.apps.monitor.store import latest_negative, topic_summary
from graftkit.errors import GraftkitError
from graftkit.serve.app_pages import DASHBOARD_HTML
from graftkit.serve.app_deps import application, require_key

router = APIRouter()


def summary(monitor, since: str, bucket: str, topics: int) -> dict:
    """Topics, alerts, latest negative items and one trend series per top topic."""
    engine = monitor.engine
    start = report.resolve_since(since, engine)
    step = report.parse_duration(bucket)
    tops = topic_summary(engine, start)[:topics]
    return {"since": start, "bucket_s": step, "topics": tops,
            "alerts": report.alert_rows(engine, start)[:100],
            "negative": latest_negative(engine, 20),
            "trends": [report.trend(engine, t["topic"], step, start) for t in tops]}


@router.get("/v1/monitor/summary", summary="What the dashboard shows, as JSON")
async def monitor_summary(request: Request, since: str = Query("48h"), bucket: str = Query("1h"),
                          topics: int = Query(6, ge=1, le=50), key_id: str = Depends(require_key)):
    try:
        return await asyncio.to_thread(summary, application(request), since, bucket, topics)
    except GraftkitError as e:  # a bad --since / bucket value
        raise HTTPException(422, str(e)) from None


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(refresh_s: int = Query(10, ge=1, le=3600)):
    return HTMLResponse(DASHBOARD_HTML.replace("{{REFRESH_S}}", str(refresh_s)))
