"""Cut a backbone to chosen transformer layers (``model.keep_layers``), DistilBERT-style.

DistilBERT initialised its 6-layer student from every second layer of BERT-base; the same idea
works for any encoder or decoder whose layers sit in one ``nn.ModuleList``: the kept layers keep
their trained weights (embeddings, pooler and head are untouched) and ``num_hidden_layers`` in
the config shrinks, so the saved folder reloads as the smaller model with plain transformers.
"""
from __future__ import annotations

import torch

from graftkit.errors import ConfigError

#: per-layer lists some configs carry (transformers 5 decoders: one attention kind per layer)
_PER_LAYER_CONFIG = ("layer_types",)


def _layer_count(config) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(text, key, None), int):
            return getattr(text, key)
    raise ConfigError(f"model.keep_layers: cannot tell how many layers a {type(config).__name__} has")


def layer_list(model) -> tuple[torch.nn.Module, str, torch.nn.ModuleList]:
    """(parent module, attribute name, ModuleList) of the model's transformer layers.

    The stack is the first ModuleList (in module order) as long as the config's layer count:
    BERT ``encoder.layer``, DistilBERT ``transformer.layer``, GPT-2 ``h``, Llama ``layers``.
    """
    n = _layer_count(model.config)
    for name, module in model.named_modules():
        for attr, child in module.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == n:
                return module, attr, child
    raise ConfigError(f"model.keep_layers: found no stack of {n} layers in {type(model).__name__}")


def check_keep_layers(keep: list[int], n_layers: int) -> list[int]:
    """Validate ``keep`` against a model of ``n_layers``; returns it unchanged."""
    if not keep:
        raise ConfigError("model.keep_layers: list at least one layer index, e.g. [0, 2, 4]")
    bad = [i for i in keep if not 0 <= i < n_layers]
    if bad:
        raise ConfigError(f"model.keep_layers: {bad} out of range; this model has {n_layers} layers "
                          f"(indices 0..{n_layers - 1})")
    if sorted(set(keep)) != list(keep):
        raise ConfigError(f"model.keep_layers: {keep} must be increasing without repeats (layers keep their order)")
    return keep


def keep_layers(model, keep: list[int]) -> torch.nn.Module:
    """Keep only the layers ``keep`` (indices into the loaded model's stack), in place; returns ``model``.

    Raises:
        ConfigError: an index is out of range, repeated or out of order, or the model has no layer stack.
    """
    parent, attr, layers = layer_list(model)
    check_keep_layers(list(keep), len(layers))
    kept = torch.nn.ModuleList(layers[i] for i in keep)
    for new_idx, layer in enumerate(kept):
        for module in layer.modules():  # decoders index their KV cache by the layer's position
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_idx
    setattr(parent, attr, kept)
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(text, key, None), int):
            setattr(text, key, len(keep))
    for key in _PER_LAYER_CONFIG:
        values = getattr(text, key, None)
        if isinstance(values, list) and len(values) == len(layers):
            setattr(text, key, [values[i] for i in keep])
    return model
