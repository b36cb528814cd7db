"""Operational endpoints: ``/v1/model`` and ``/metrics`` (keyed), ``/healthz`` and ``/readyz`` (open)."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from graftkit.serve import schemas
from graftkit.serve.deps import authenticate, authenticate_metrics, get_service, require_predictor
from graftkit.serve.service import service_labels

router = APIRouter()


@router.get("/v1/model", response_model=schemas.ModelInfo, summary="What this service predicts",
            dependencies=[Depends(authenticate)])
async def model_info(request: Request, predictor=Depends(require_predictor)):
    svc = get_service(request)
    s = svc.settings
    labels = service_labels(predictor.task)
    return {"model": svc.model_name, "task": predictor.task.name, "backend": svc.backend_label,
            "labels": labels or None,
            "max_texts": s.max_texts, "max_chars": s.max_chars, "max_batch_size": s.max_batch_size,
            "pair_input": bool(predictor.cfg.data.text_pair_column)}


@router.get("/healthz", response_model=schemas.Health, summary="Liveness: the process answers")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}},
            summary="Readiness: the model is loaded and taking requests")
async def readyz(request: Request):
    svc = get_service(request)
    predictor = svc.predictor
    body = {"ready": svc.ready, "model": svc.model_name, "task": predictor.task.name if predictor else "",
            "backend": svc.backend_label}
    return JSONResponse(body, status_code=200 if svc.ready else 503)


@router.get("/metrics", summary="Prometheus metrics (needs a key unless --public-metrics)", response_class=Response,
            dependencies=[Depends(authenticate_metrics)])
async def prometheus(request: Request):
    data, content_type = get_service(request).metrics.render()
    return Response(data, media_type=content_type)
