"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021 placement), ``peft.method: bottleneck``.

Why graftkit carries its own: ``peft`` has no bottleneck adapter, and the library that does
(``adapters``, 1.3.0) pins transformers 4.57 and cannot be installed beside the transformers 5
graftkit uses. The method is small: after the feed-forward output projection of every block
(Pfeiffer placement, before the residual sum and LayerNorm) a residual MLP
``h + up(act(down(h)))`` is added, with ``up`` zero-initialised so training starts from the
pretrained function. The backbone is frozen; adapters and the task head (with BERT's pooler) train.

The adapter hangs under its target module as a child named ``bottleneck`` and runs as a forward
hook, so the backbone's own parameter names stay unchanged. A run folder stores only
``bottleneck_adapter.safetensors`` (adapters + head) and ``bottleneck_config.json`` beside the base
model's ``config.json``; loading rebuilds base + adapters. Adapters are non-linear, so they cannot
be merged into the weights: ``graftkit export`` gives a standalone (ONNX) model instead.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from transformers.activations import ACT2FN

from graftkit.config import PeftSettings
from graftkit.errors import ConfigError, RunFolderError
from graftkit.modeling.load import quiet_missing_head
from graftkit.modeling.modules import linear_names

CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "bottleneck_adapter.safetensors"
CHILD = "bottleneck"
_ENCODER_FFN_OUT = r".*\.layer\.\d+\.output\.dense"  # BERT-style: excludes attention.output.dense
# the feed-forward output projection of each block, per model_type
DEFAULT_TARGETS = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra", "camembert", "deberta", "deberta-v2",
                     "ernie", "mpnet", "megatron-bert", "luke", "xlm-roberta-xl", "nezha"), _ENCODER_FFN_OUT),
    "distilbert": r".*\.ffn\.lin2",
    "gpt2": r".*\.mlp\.c_proj",
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"), r".*\.mlp\.down_proj"),
}


class BottleneckAdapter(torch.nn.Module):
    """``h + up(act(down(h)))``; ``up`` starts at zero, so a new adapter is the identity."""

    def __init__(self, size: int, width: int, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        self.down = torch.nn.Linear(size, width)
        self.up = torch.nn.Linear(width, size)
        self.act = ACT2FN[activation]
        self.dropout = torch.nn.Dropout(dropout)
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.dropout(self.act(self.down(hidden))))


def _run_adapter(module: torch.nn.Module, args, output):
    return getattr(module, CHILD)(output)


def _targets(model: torch.nn.Module, settings: PeftSettings) -> list[str]:
    names = [n for n, _ in model.named_modules()]
    wanted = settings.target_modules
    if wanted is None:
        model_type = getattr(model.config, "model_type", "")
        if model_type not in DEFAULT_TARGETS:
            raise ConfigError(f"peft.method bottleneck: no default placement for model_type '{model_type}'; set "
                              "peft.target_modules to the feed-forward output projection (a regex or module names)")
        wanted = DEFAULT_TARGETS[model_type]
    if isinstance(wanted, str):
        found = [n for n in names if re.fullmatch(wanted, n)]
    else:
        found = [n for n in names if any(n == w or n.endswith("." + w) for w in wanted)]
    if not found:
        raise ConfigError(f"peft.target_modules {wanted!r} matches no module of {type(model).__name__}; "
                          f"module names here look like: {', '.join(linear_names(model)[:12])}")
    return found


def _output_size(module: torch.nn.Module, name: str) -> int:
    size = getattr(module, "out_features", None) or getattr(module, "nf", None)  # Linear, or GPT-2's Conv1D
    if not isinstance(size, int):
        raise ConfigError(f"peft.target_modules: {name} ({type(module).__name__}) is not a linear projection; "
                          "bottleneck adapters need a module with a fixed output width")
    return size


def add_adapters(model: torch.nn.Module, settings: PeftSettings, head_names: list[str]) -> torch.nn.Module:
    """Freeze ``model`` but its head, add an adapter after every target module.

    Args:
        model: a transformers model with its task head.
        settings: ``r`` is the adapter width; ``dropout`` inside the adapter; ``options.activation``
            (default relu) names a transformers activation.
        head_names: modules that train in full (the task head; BERT's pooler).

    Returns:
        The same model object, adapted in place.
    """
    unknown = set(settings.options) - {"activation"}
    if unknown:
        raise ConfigError(f"peft.options {sorted(unknown)}: bottleneck adapters accept only 'activation'")
    activation = settings.options.get("activation", "relu")
    if activation not in ACT2FN:
        raise ConfigError(f"peft.options.activation '{activation}' is unknown; use e.g. relu, gelu, silu")
    targets = _targets(model, settings)
    for p in model.parameters():
        p.requires_grad = False
    for head in head_names:
        for p in model.get_submodule(head).parameters():
            p.requires_grad = True
    modules = dict(model.named_modules())
    for name in targets:
        target = modules[name]
        target.add_module(CHILD, BottleneckAdapter(_output_size(target, name), settings.r, activation,
                                                   settings.dropout))
        target.register_forward_hook(_run_adapter)
    model.graftkit_bottleneck = {"targets": targets, "r": settings.r, "activation": activation,
                                 "dropout": settings.dropout, "head_modules": head_names}
    return model


def is_bottleneck_model(model) -> bool:
    return hasattr(model, "graftkit_bottleneck")


def _own_weight(key: str, head_modules: list[str]) -> bool:
    """Whether a state-dict key belongs in the adapter file (an adapter or a fully trained head module)."""
    return f".{CHILD}." in key or key.startswith(tuple(f"{h}." for h in head_modules))


def save_adapters(model: torch.nn.Module, out_dir: str | Path, base_name_or_path: str) -> None:
    """Replace the full weights Trainer wrote in ``out_dir`` by the adapters + head alone."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    spec = model.graftkit_bottleneck
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if _own_weight(k, spec["head_modules"])}
    save_file(state, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    (out_dir / CONFIG_FILE).write_text(json.dumps({**spec, "method": "bottleneck",
                                                   "base_model_name_or_path": base_name_or_path}, indent=2),
                                       encoding="utf-8")
    for full in out_dir.glob("model*.safetensors"):
        full.unlink()
    (out_dir / "model.safetensors.index.json").unlink(missing_ok=True)


def load_bottleneck_model(run_dir: str | Path, model_class, base_path: str) -> torch.nn.Module:
    """The base model with the run's adapters and head, ready for inference."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    run_dir = Path(run_dir)
    spec = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(str(run_dir))
    with quiet_missing_head():  # the head is 'missing' from the base checkpoint; the adapter file holds it
        model = model_class.from_pretrained(base_path, config=config)
    settings = PeftSettings(method="bottleneck", r=spec["r"], dropout=spec["dropout"],
                            target_modules=spec["targets"], options={"activation": spec["activation"]})
    add_adapters(model, settings, spec["head_modules"])
    state = load_file(str(run_dir / WEIGHTS_FILE))
    result = model.load_state_dict(state, strict=False)
    absent = [k for k in result.missing_keys if _own_weight(k, spec["head_modules"])]
    if result.unexpected_keys or absent:
        raise RunFolderError(f"{run_dir / WEIGHTS_FILE} does not fit {base_path}: unexpected weights "
                             f"{result.unexpected_keys[:5]}, absent adapter/head weights {absent[:5]}; was the "
                             "run trained on another base model, or is the file incomplete?")
    return model.eval()
