"""Supervised fine-tuning of decoder-only models (GPT-2, Llama, Qwen, any AutoModelForCausalLM).

Data preparation follows trl's SFT conventions (completion-only loss, EOS appended, best-fit
packing with ``trl.pack_dataset``) and batches go through trl's ``DataCollatorForLanguageModeling``;
training itself is graftkit's one Trainer path (graftkit/tasks/causal_lm/capabilities.py).
"""
from __future__ import annotations

from transformers import AutoModelForCausalLM

from graftkit.tasks.causal_lm.capabilities import CausalLmGenerates, CausalLmTraining
from graftkit.tasks.causal_lm.config import CausalLmConfig
from graftkit.tasks.common.generation import rows
from graftkit.tasks.common.generation.capabilities import GenerativeCard
from graftkit.tasks.common.generation.task import GenerativeTask


class CausalLmTask(GenerativeTask):
    """Prompt → completion with a decoder-only language model."""

    name = "causal_lm"
    config_class = CausalLmConfig
    model_class = AutoModelForCausalLM
    row_formats = (rows.PAIR, rows.TEXT, rows.CHAT)
    capabilities = (CausalLmTraining, CausalLmGenerates, GenerativeCard)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.truncated_prompts = 0
