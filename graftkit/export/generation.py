"""ONNX export of generative runs (causal_lm, seq2seq): refused, with the reason in one line.

A generate()-ready ONNX model (decoder with KV-cache inputs, or encoder + decoder graphs) is what
optimum-onnx's ORTModelForCausalLM / ORTModelForSeq2SeqLM produce. Its latest release (0.1.0)
requires transformers < 4.58 and fails to import under transformers 5 (``transformers.modeling_utils``
no longer has ``get_parameter_dtype``); this was tried, and graftkit needs transformers 5. Exporting
only the logits graph (what ``graftkit export`` does for encoder tasks) would give a model that
cannot generate, so graftkit refuses instead.
"""
from __future__ import annotations

import transformers


def refusal(task_name: str) -> str:
    """The one-line reason ``graftkit export`` gives for a generative run."""
    return (f"{task_name} runs cannot be exported to ONNX with this install: the exporter for generating "
            f"models (optimum-onnx, latest 0.1.0) supports transformers < 4.58 and this is transformers "
            f"{transformers.__version__}; serve the run with the torch backend (`graftkit serve RUN`)")
