"""Token classification heads: transformers' linear head, optionally topped with a CRF (pytorch-crf).

The CRF variant subclasses the architecture's own ``*ForTokenClassification`` class, so it saves
and loads as a plain transformers folder (``model.safetensors`` with ``crf.*`` tensors, and
``use_crf`` in ``config.json``). Transitions the tag scheme forbids (``O → I-X``, ...) are pinned
to a large negative score before every use, so Viterbi decoding never emits an invalid sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torchcrf import CRF
from transformers import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING, AutoConfig, AutoModelForTokenClassification
from transformers.modeling_outputs import ModelOutput

from graftkit.errors import RunFolderError
from graftkit.tasks.ner.schemes import allowed_transitions, pin_forbidden


@dataclass
class CrfOutput(ModelOutput):
    """``logits`` are the CRF's emission scores; ``tags`` the Viterbi path (-100 off units), in eval only."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    tags: torch.Tensor | None = None


def compact(emissions: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gather the labelled positions (labels != -100) of each row to the left.

    Returns (emissions, tags, mask, index) of shape (batch, units[, tags]); ``index`` maps back.
    """
    keep = labels != -100
    lengths = keep.sum(1)
    width = max(int(lengths.max()), 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    em = emissions.gather(1, order.unsqueeze(-1).expand(-1, -1, emissions.size(-1)))
    tags = labels.gather(1, order).clamp(min=0)
    mask = torch.arange(width, device=labels.device)[None, :] < lengths[:, None]
    return em, tags, mask, order


class CrfMixin:
    """Adds ``self.crf`` on top of a ``*ForTokenClassification`` model; loss is the CRF's NLL."""

    def __init__(self, config):
        super().__init__(config)
        self.crf = CRF(config.num_labels, batch_first=True)
        self._allowed: tuple | None = None  # numpy masks from allowed_transitions

    def _init_weights(self, module):
        if isinstance(module, CRF):  # pytorch-crf's own initialisation
            module.reset_parameters()
        else:
            super()._init_weights(module)

    def constrain(self) -> None:
        """Pin forbidden transitions to FORBIDDEN (their gradient is ~0, so they stay there)."""
        if self._allowed is None:  # built on first use: from_pretrained may create modules on the meta device
            labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
            self._allowed = allowed_transitions(labels, getattr(self.config, "tag_scheme", "IOB2"))
        pin_forbidden(self.crf, self._allowed)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        emissions = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        if labels is None:
            return CrfOutput(logits=emissions)
        self.constrain()
        em, gold, mask, order = compact(emissions.float(), labels)
        rows = mask[:, 0]  # a window may hold no unit (only continuation pieces); it adds no loss
        loss = -self.crf(em[rows], gold[rows], mask[rows], reduction="token_mean") if rows.any() \
            else emissions.sum() * 0.0
        tags = None
        if not self.training:
            tags = torch.full_like(labels, -100)
            if rows.any():
                paths = self.crf.decode(em[rows], mask[rows])
                for r, path in zip(rows.nonzero().flatten().tolist(), paths):
                    tags[r, order[r, :len(path)]] = torch.tensor(path, device=tags.device)
        return CrfOutput(loss=loss, logits=emissions, tags=tags)


_CRF_CLASSES: dict[type, type] = {}


def crf_class(base: type) -> type:
    """``BertForTokenClassification`` → ``BertForTokenClassificationWithCrf`` (cached)."""
    if base not in _CRF_CLASSES:
        _CRF_CLASSES[base] = type(f"{base.__name__}WithCrf", (CrfMixin, base), {"__module__": __name__})
    return _CRF_CLASSES[base]


class TokenClassifier:
    """The NER task's ``model_class``: AutoModelForTokenClassification, plus a CRF when ``config.use_crf``."""

    #: what plain transformers loads the folder with (a CRF run then yields the emissions only)
    transformers_class = AutoModelForTokenClassification

    @classmethod
    def from_pretrained(cls, path, config=None, **kwargs):
        if config is None:
            config = AutoConfig.from_pretrained(path, **{k: v for k, v in kwargs.items() if k == "revision"})
        if not getattr(config, "use_crf", False):
            return AutoModelForTokenClassification.from_pretrained(path, config=config, **kwargs)
        base = MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING[type(config)]
        return crf_class(base).from_pretrained(path, config=config, **kwargs)


def read_transitions(run_dir: Path) -> tuple[np.ndarray, ...]:
    """The trained CRF's (start, end, transitions) arrays from a run folder's safetensors.

    Raises:
        RunFolderError: no safetensors file holds them.
    """
    for f in sorted(Path(run_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="np") as st:
            # full runs store "crf.transitions"; LoRA adapter runs prefix it (base_model.model.crf...)
            key = next((k for k in st.keys() if k.endswith("crf.transitions")), None)
            if key is not None:
                prefix = key[: -len("transitions")]
                return tuple(st.get_tensor(f"{prefix}{k}") for k in ("start_transitions", "end_transitions",
                                                                     "transitions"))
    raise RunFolderError(f"{run_dir}: task.crf is set but no safetensors file holds crf.transitions")
