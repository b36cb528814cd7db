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

from typing import Any, Sequence

from graftkit.data.dataset import Example
from graftkit.errors import DataError
from graftkit.tasks.common.generation.rows import CHAT, TEXT, render_plain


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt_text(tokenizer, messages: list[dict]) -> str:
    """The prompt turns rendered for generation: the tokenizer's chat template, else graftkit's plain one."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return render_plain(messages)


def chat_completion_text(tokenizer, messages: list[dict], reply: str) -> str:
    """What follows the prompt text when the reply is rendered (the template's end-of-turn marks included)."""
    if not has_chat_template(tokenizer):
        return reply
    prompt = chat_prompt_text(tokenizer, messages)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": reply}], tokenize=False)
    # templates that rewrite earlier turns break the prefix property; then learn the reply text itself
    return full[len(prompt):] if full.startswith(prompt) else reply


def prompt_ids(tokenizer, x: Any) -> list[int]:
    """Token ids of one prompt: a string (tokenizer's own special tokens, e.g. Llama's BOS) or chat turns."""
    if isinstance(x, list):
        return tokenizer(chat_prompt_text(tokenizer, x), add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    return tokenizer(x)["input_ids"] if x else ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else [])


def keep_end(ids: list[int], room: int, bos: int | None) -> list[int]:
    """The last ``room`` tokens of ``ids``, keeping a leading BOS."""
    if len(ids) <= room:
        return ids
    if bos is not None and ids and ids[0] == bos and room > 1:
        return [bos] + ids[len(ids) - room + 1:]
    return ids[len(ids) - room:]


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
