"""Batched generation over token-id prompts: the one decoding path used by validation during
training, ``graftkit generate``, the evaluator and the HTTP endpoint (any task that generates).

Decoder-only models get their prompts left-padded (generation continues from the last position of
every row); encoder–decoders get them right-padded. Outputs are the new tokens only.
"""
from __future__ import annotations

import json
from typing import Any, Hashable, Sequence

import torch
from transformers import GenerationConfig


def pad_prompts(prompts: Sequence[Sequence[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) for a batch of token-id lists."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        sl = slice(width - len(p), width) if left else slice(0, len(p))
        ids[i, sl] = torch.tensor(list(p), dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


@torch.no_grad()
def generate_ids(model, prompts: Sequence[Sequence[int]], generation_config: GenerationConfig, decoder_only: bool,
                 streamer=None, stopping_criteria=None) -> list[list[int]]:
    """New token ids for each prompt (pad / EOS at the end removed)."""
    pad_id = generation_config.pad_token_id
    ids, mask = pad_prompts(prompts, pad_id, left=decoder_only)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             generation_config=generation_config, streamer=streamer,
                             stopping_criteria=stopping_criteria)
    finally:
        model.train(was_training)
    new = out[:, ids.shape[1]:] if decoder_only else out[:, 1:]  # seq2seq: drop decoder_start
    eos = generation_config.eos_token_id
    stops = set(eos if isinstance(eos, list) else [eos]) | {pad_id}
    result = []
    for row in new.tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        result.append(row[:cut])
    return result


def decode_texts(tokenizer, token_lists: Sequence[Sequence[int]]) -> list[str]:
    return [t.strip() for t in tokenizer.batch_decode(token_lists, skip_special_tokens=True)]


def input_key(x: Any) -> Hashable:
    """A hashable key of an input (a prompt string, or a list of chat messages)."""
    return x if isinstance(x, str) else json.dumps(x, sort_keys=True, ensure_ascii=False)
