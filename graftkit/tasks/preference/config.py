"""Keys of `task:` for `type: preference` (DPO / KTO on a decoder with trl's trainers)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator
from trl import DPOConfig, KTOConfig

from graftkit.tasks.common.generation.config import GenerativeConfig


def trl_loss_types(method: str) -> tuple[str, ...]:
    """The loss types the installed trl offers for ``method`` (read from its config's field metadata)."""
    meta = (DPOConfig if method == "dpo" else KTOConfig).__dataclass_fields__["loss_type"].metadata
    return tuple(meta.get("choices") or re.findall(r"`'(\w+)'`", meta["help"]))


class PreferenceConfig(GenerativeConfig):
    """Preference optimisation of a decoder from a causal_lm run folder (full or LoRA) or a hub decoder.

    DPO rows: prompt, chosen, rejected. KTO rows: prompt, completion and a true/false label (desirable or not).
    The reference model is the starting checkpoint: held once and never trained (with ``peft:``, the same model
    with its adapter disabled).
    """

    type: Literal["preference"] = "preference"
    method: Literal["dpo", "kto"] = Field("dpo", description="dpo: trl's DPOTrainer on chosen/rejected pairs; "
                                          "kto: trl's KTOTrainer on completions labelled desirable or not")
    chosen_column: str = Field("chosen", description="DPO: the preferred completion")
    rejected_column: str = Field("rejected", description="DPO: the dispreferred completion")
    label_column: str = Field("label", description="KTO: true (desirable) or false (undesirable)")
    beta: float = Field(0.1, gt=0, description="how far the policy may move from the reference (higher: less)")
    loss_type: str | list[str] | None = Field(
        None, description="trl's loss for the method (DPO: sigmoid, ipo, hinge, ...; KTO: kto, apo_zero_unpaired); "
        "DPO also takes a list, combined with loss_weights (e.g. [sigmoid, sft]: DPO plus the chosen completions' "
        "NLL, as in RPO); None: trl's default")
    loss_weights: list[float] | None = Field(None, description="DPO: one weight per loss_type (default: all 1)")

    @model_validator(mode="after")
    def _known_loss(self) -> "PreferenceConfig":
        offered = trl_loss_types(self.method)
        asked = [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type or [])
        unknown = [x for x in asked if x not in offered]
        if unknown:
            raise ValueError(f"loss_type {', '.join(unknown)} is not a {self.method} loss of the installed trl; "
                             f"use one of: {', '.join(offered)}")
        if self.method == "kto" and (isinstance(self.loss_type, list) or self.loss_weights):
            raise ValueError("kto takes one loss_type and no loss_weights (trl's KTOConfig)")
        if self.loss_weights is not None and len(self.loss_weights) != len(asked):
            raise ValueError(f"loss_weights has {len(self.loss_weights)} weights for {len(asked)} loss types")
        return self
