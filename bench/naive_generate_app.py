"""Baseline for bench/bench_generation_serve.py: the naive way to serve a generator — a FastAPI endpoint
that calls ``model.generate`` once per request (no batching, no streaming, no auth, no limits).

    NAIVE_MODEL_DIR=runs/x uvicorn bench.naive_generate_app:app --port 8102
"""
from __future__ import annotations

import os

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

app = FastAPI()
MODEL_DIR = os.environ["NAIVE_MODEL_DIR"]
tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
model = AutoModelForCausalLM.from_pretrained(MODEL_DIR).eval()
generation_config = GenerationConfig.from_pretrained(MODEL_DIR)


class Item(BaseModel):
    prompt: str


@app.post("/generate")
def generate(item: Item):  # a plain `def`: FastAPI runs it in its thread pool, one generate() per request
    ids = tokenizer(item.prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, generation_config=generation_config)
    new = out[0, ids["input_ids"].shape[1]:]
    return {"generated": tokenizer.decode(new, skip_special_tokens=True), "tokens": int(new.numel())}
