"""Token ids and labels for causal-LM fine-tuning.

Each example becomes ``prompt ids + completion ids + EOS`` with labels ``-100`` over the prompt and
the completion ids + EOS as targets. The EOS label is built here from the unpadded sequence, so a
tokenizer whose pad token is its EOS (GPT-2) still learns to stop: padding is added later by the
collator, which labels only the padded positions -100.

Truncation policy: the completion (+ EOS) is never cut; if it does not fit in ``data.max_length``
with at least one prompt token the row is an error naming its file, line and field. A prompt that
is too long loses its start (``keep_end``, the default; a leading BOS is kept) or is an error
(``prompt_truncation: error``).
"""
from __future__ import annotations

from typing import Sequence

from graftkit.data.dataset import Example
from graftkit.errors import DataError
from graftkit.tasks.common.generation.decoder import chat_completion_text, keep_end, prompt_ids
from graftkit.tasks.common.generation.rows import CHAT, TEXT


def encode_example(e: Example, tokenizer, max_length: int, cfg) -> tuple[list[int], list[int], bool]:
    """(input_ids, labels, prompt_was_truncated) of one example."""
    fmt = e.extra.get("format")
    completion_text = chat_completion_text(tokenizer, e.extra["messages"], e.label) if fmt == CHAT else e.label
    prompt = prompt_ids(tokenizer, e.extra["messages"] if fmt == CHAT else e.text)
    completion = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if not completion or completion[-1] != eos:
        completion = completion + [eos]
    field = cfg.messages_column if fmt == CHAT else (cfg.completion_column if fmt != TEXT else "text")
    need_prompt = 1 if prompt else 0
    if len(completion) + need_prompt > max_length:
        raise DataError(e.path, f"the completion is {len(completion)} tokens with EOS, which leaves no room within "
                        f"data.max_length={max_length} (the completion is never cut); raise data.max_length or "
                        "shorten it", line=e.line, field=field)
    truncated = len(prompt) + len(completion) > max_length
    if truncated and cfg.prompt_truncation == "error":
        raise DataError(e.path, f"prompt ({len(prompt)} tokens) + completion ({len(completion)} tokens) exceed "
                        f"data.max_length={max_length} and task.prompt_truncation is 'error'; raise "
                        "data.max_length, shorten the prompt, or set prompt_truncation: keep_end",
                        line=e.line, field=cfg.messages_column if fmt == CHAT else cfg.prompt_column)
    prompt = keep_end(prompt, max_length - len(completion), tokenizer.bos_token_id)
    return prompt + completion, [-100] * len(prompt) + completion, truncated


def build_features(examples: Sequence[Example], tokenizer, max_length: int, cfg) -> tuple[dict, int]:
    """Columns input_ids / labels for a ``datasets.Dataset``, and how many prompts were truncated."""
    cols: dict[str, list] = {"input_ids": [], "labels": []}
    truncated = 0
    for e in examples:
        ids, labels, cut = encode_example(e, tokenizer, max_length, cfg)
        cols["input_ids"].append(ids)
        cols["labels"].append(labels)
        truncated += cut
    return cols, truncated
