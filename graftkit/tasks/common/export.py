"""ONNX export of models that map tokenizer features to logits (every encoder task's own head)."""
from __future__ import annotations

import inspect

from graftkit.errors import ExportError
from graftkit.tasks.capabilities import Exports

#: the tokenizer outputs an exported graph may take
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TokenizerGraph(Exports):
    """The graph's inputs are the tokenizer outputs the model's forward accepts, in the tokenizer's order."""

    def onnx_inputs(self, model, tokenizer) -> list[str]:
        accepts = set(inspect.signature(model.forward).parameters)
        names = [n for n in tokenizer.model_input_names if n in accepts]
        if "input_ids" not in names:
            raise ExportError(f"{type(model).__name__}: forward() takes no input_ids; cannot export")
        unsupported = sorted(set(names) - set(GRAPH_INPUTS))
        if unsupported:
            raise ExportError(f"{type(model).__name__}: cannot export a model that needs inputs {unsupported}")
        return names
