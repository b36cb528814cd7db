"""The model card's decoding section for causal_lm / seq2seq runs (their generation_config.json)."""
from __future__ import annotations

import json

from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS
from graftkit.tasks.generation.config import DECODING_KEYS


def decoding_section(run: RunFolder) -> list[str]:
    """Markdown lines stating the decoding settings every reported score was generated with ([] otherwise)."""
    path = run.path / "generation_config.json"
    if not TASKS.get(run.task_state()["task"]).generative or not path.is_file():
        return []
    gc = json.loads(path.read_text(encoding="utf-8"))
    lines = ["## Decoding", "", "Every generated output in this folder (validation during training, "
             "predictions/, metrics) used these settings from `generation_config.json`; `graftkit generate` "
             "and `POST /v1/generate` start from them.", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {gc[k]} |" for k in DECODING_KEYS if k in gc]
    lines += [f"| {k} | {gc[k]} |" for k in ("eos_token_id", "pad_token_id", "decoder_start_token_id") if k in gc]
    return lines + ["", "Try it: `graftkit generate " + str(run.public_path) + " \"your prompt\"`", ""]
