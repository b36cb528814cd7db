"""Baseline (a) for bench/serve_load.py: the naive way to serve a model — a FastAPI endpoint that calls a
``transformers.pipeline`` once per request (no batching, no auth, no limits).

    NAIVE_MODEL_DIR=runs/x uvicorn bench.naive_app:app --port 8101
"""
from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

app = FastAPI()
classifier = pipeline("text-classification", model=os.environ["NAIVE_MODEL_DIR"], device="cpu")


class Item(BaseModel):
    texts: list[str]


@app.post("/v1/predict")
def predict(item: Item):
    return {"predictions": classifier(item.texts)}
