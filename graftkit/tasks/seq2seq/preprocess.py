"""Source and target token ids for encoder–decoder fine-tuning.

Targets end with the model's EOS (BERT2BERT: [SEP]); a leading token equal to the decoder start
(BERT2BERT: [CLS]) is dropped from the labels, because the model itself prepends the decoder start
when it shifts the labels right. Targets are never cut: one longer than ``max_target_length`` is an
error naming file, line and field. Sources follow ``prompt_truncation`` (default: keep the end).
"""
from __future__ import annotations

from typing import Sequence

from graftkit.data.dataset import Example
from graftkit.errors import DataError


def source_ids(tokenizer, text: str, max_length: int, policy: str = "keep_end", example: Example | None = None,
               field: str = "prompt") -> list[int]:
    ids = tokenizer(text)["input_ids"]
    if len(ids) <= max_length:
        return ids
    if policy == "error" and example is not None:
        raise DataError(example.path, f"the source is {len(ids)} tokens, over data.max_length={max_length}, and "
                        "task.prompt_truncation is 'error'; raise data.max_length or shorten it",
                        line=example.line, field=field)
    # keep the special tokens the tokenizer put around the text ([CLS] ... [SEP]) and the end of the text
    head = 1 if tokenizer.cls_token_id is not None and ids[0] == tokenizer.cls_token_id else 0
    tail = ids[-1:] if ids[-1] in (tokenizer.sep_token_id, tokenizer.eos_token_id) else []
    body = ids[head:len(ids) - len(tail)]
    return ids[:head] + body[len(body) - (max_length - head - len(tail)):] + tail


def target_ids(tokenizer, text: str, decoder_start: int, eos: int) -> list[int]:
    ids = tokenizer(text_target=text)["input_ids"]
    if ids and ids[0] == decoder_start:
        ids = ids[1:]
    if not ids or ids[-1] != eos:
        ids = ids + [eos]
    return ids


def build_features(examples: Sequence[Example], tokenizer, max_length: int, max_target: int, cfg,
                   decoder_start: int, eos: int) -> dict:
    cols: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for e in examples:
        src = source_ids(tokenizer, e.text, max_length, cfg.prompt_truncation, e, cfg.prompt_column)
        tgt = target_ids(tokenizer, e.label, decoder_start, eos)
        if len(tgt) > max_target:
            raise DataError(e.path, f"the target is {len(tgt)} tokens with EOS, over task.max_target_length="
                            f"{max_target} (targets are never cut); raise it or shorten the text",
                            line=e.line, field=cfg.completion_column)
        cols["input_ids"].append(src)
        cols["attention_mask"].append([1] * len(src))
        cols["labels"].append(tgt)
    return cols
