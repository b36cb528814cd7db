"""What every decoder-only generative task shares: prompt token ids (plain or chat-templated), keeping a
prompt's end when it is too long, and left-padded generation with the run's decoding settings."""
from __future__ import annotations

from typing import Any, Sequence

from transformers import GenerationConfig

from graftkit.tasks.common.generation.capabilities import GenerativeGenerates
from graftkit.tasks.common.generation.rows import render_plain


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


class DecoderGenerates(GenerativeGenerates):
    """Generation by a decoder-only model: the prompt is continued (left padding), its end kept when too long."""

    decoder_only = True

    def generation_config(self, tokenizer, model_config) -> GenerationConfig:
        return GenerationConfig(**self.settings().decoding(), eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)

    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        room = self.task.max_length - 1
        return [keep_end(prompt_ids(tokenizer, x), room, tokenizer.bos_token_id) for x in inputs]

    def prompt_tokens(self, prompt: Any, tokenizer) -> int:
        return len(prompt_ids(tokenizer, prompt))
