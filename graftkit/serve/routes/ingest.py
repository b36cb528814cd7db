"""``POST /v1/ingest``: authenticated push of news items into the monitor (scored, stored, rules evaluated)."""
import asyncio

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from graftkit.apps.monitor.sources import Item, Skip, from_records
from graftkit.apps.store import StoreError
from graftkit.serve.app_deps import application, require_key

router = APIRouter()


class IngestRequest(BaseModel):
    items: list[dict] = Field(..., max_length=1000, description="records with time, text and optional id, "
                                                                "entity, source (the monitor's field names)")
    source: str | None = Field(None, max_length=200, description="source name (default: api:<key id>)")


class IngestResponse(BaseModel):
    ingested: int
    duplicates: int
    skipped: list[dict]
    alerts: list[dict]


@router.post("/v1/ingest", response_model=IngestResponse, summary="Push news items into the monitor")
async def ingest(body: IngestRequest, request: Request, key_id: str = Depends(require_key)):
    monitor = application(request)
    parsed = list(from_records(body.items, monitor.cfg.fields, body.source or f"api:{key_id}"))
    skips = [x for x in parsed if isinstance(x, Skip)]
    items = [x for x in parsed if isinstance(x, Item)]
    try:
        for s in skips:
            await asyncio.to_thread(monitor.skip, s)
        result = await asyncio.to_thread(monitor.ingest, items) if items else {"ingested": 0, "duplicates": 0,
                                                                              "events": []}
    except StoreError as e:  # nothing of the batch was stored; the client may send it again
        raise HTTPException(503, str(e), headers={"Retry-After": "5"}) from None
    return {"ingested": result["ingested"], "duplicates": result["duplicates"],
            "skipped": [{"where": s.where, "reason": s.reason} for s in skips],
            "alerts": [{"event": e["event"], **e["alert"]} for e in result["events"]]}
