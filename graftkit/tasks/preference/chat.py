"""DPO pairs in trl's conversational format, validated row by row (errors name file, line and field).

A row is either an explicit prompt (``prompt``: a list of ``{role, content}`` messages) with the two replies
(``chosen`` / ``rejected``: a list holding the assistant's one message), or two whole conversations that share
their prompt turns and differ in the final assistant reply (trl's implicit prompt; as in trl, a text ``prompt``
beside two conversations is ignored). The example keeps the prompt turns in ``extra['messages']`` and the two
replies as text; trl's DPOTrainer renders them with the tokenizer's chat template, and generation renders the
prompt turns with the same template (graftkit/tasks/common/generation/decoder.py).
"""
from __future__ import annotations

from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.common.generation.decoder import has_chat_template
from graftkit.tasks.common.generation.rows import CHAT, ROLES, render_plain

MESSAGE = "{role, content} with role one of " + ", ".join(ROLES)


def is_chat(row: Row, *columns: str) -> bool:
    """Whether any of ``columns`` holds a message list (a conversation) rather than text."""
    return any(isinstance(row.values.get(c), list) for c in columns)


def turns(row: Row, column: str) -> list[dict] | None:
    """The validated messages of ``column``; None when it holds no list (text, or no such column)."""
    raw: Any = row.values.get(column)
    if not isinstance(raw, list):
        return None
    if not raw:
        raise DataError(row.path, "an empty conversation: expected a list of messages", line=row.line, field=column)
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(row.path, f"each message must be {MESSAGE}", line=row.line, field=f"{column}[{i}]")
        if not m["content"].strip():
            raise DataError(row.path, "empty message content", line=row.line, field=f"{column}[{i}].content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def prompt_example(row: Row, column: str) -> Example:
    """A chat prompt alone (rows read without labels)."""
    prompt = turns(row, column)
    return Example(text=render_plain(prompt), path=row.path, line=row.line, extra={"format": CHAT, "messages": prompt})


def _reply(row: Row, column: str, messages: list[dict]) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = ", ".join(m["role"] for m in messages)
        raise DataError(row.path, f"after the prompt turns, a reply must be one assistant message; found: {roles}",
                        line=row.line, field=column)
    return messages[0]["content"]


def _shared_prompt(row: Row, cfg, chosen: list[dict], rejected: list[dict]) -> list[dict]:
    """The prompt turns both conversations share (all but the final reply)."""
    prompt = chosen[:-1]
    if not prompt:
        raise DataError(row.path, "the conversation has no prompt turns before the reply; give the prompt turns "
                        f"in both conversations or as a '{cfg.prompt_column}' message list", line=row.line,
                        field=cfg.chosen_column)
    if rejected[:-1] != prompt:
        at = next((i for i, (a, b) in enumerate(zip(prompt, rejected)) if a != b), min(len(prompt), len(rejected)))
        raise DataError(row.path, f"the chosen and rejected conversations do not share the same prompt turns "
                        f"(they differ at message {at}); only the final assistant reply may differ", line=row.line,
                        field=f"{cfg.rejected_column}[{at}]")
    return prompt


def pair_example(row: Row, cfg) -> Example:
    """One chat-format DPO pair: ``text`` is the prompt in graftkit's plain rendering (for reports), ``label`` the
    chosen reply, ``extra['rejected']`` the rejected one, ``extra['messages']`` the prompt turns."""
    chosen, rejected = turns(row, cfg.chosen_column), turns(row, cfg.rejected_column)
    if chosen is None or rejected is None:
        text = cfg.chosen_column if chosen is None else cfg.rejected_column
        raise DataError(row.path, "chosen and rejected must both be conversations (lists of messages) or both text",
                        line=row.line, field=text)
    prompt = turns(row, cfg.prompt_column)
    if prompt is None:  # trl's implicit prompt: the turns the two conversations share
        prompt = _shared_prompt(row, cfg, chosen, rejected)
        chosen, rejected = chosen[len(prompt):], rejected[len(prompt):]
    good, bad = _reply(row, cfg.chosen_column, chosen), _reply(row, cfg.rejected_column, rejected)
    if good.strip() == bad.strip():
        raise DataError(row.path, "the chosen and the rejected reply are identical, so there is no preference to "
                        "learn; fix or drop the row", line=row.line, field=cfg.rejected_column)
    return Example(text=render_plain(prompt), label=good, path=row.path, line=row.line,
                   extra={"format": CHAT, "messages": prompt, "rejected": bad})


def check_template(examples: list[Example], tokenizer, model: str) -> None:
    """Refuse chat-format pairs when the tokenizer has no chat template to render them with (naming the first)."""
    first = next((e for e in examples if e.extra.get("format") == CHAT), None)
    if first is not None and not has_chat_template(tokenizer):
        raise DataError(first.path, f"chat-format pairs are rendered with the tokenizer's chat template, and the "
                        f"tokenizer of {model} has none; start from a model whose tokenizer has a chat_template, "
                        "or give the pairs as prompt/chosen/rejected text", line=first.line)


def trl_columns(examples: list[Example]) -> dict[str, list]:
    """trl's conversational preference columns (an explicit prompt; each reply one assistant message)."""
    def reply(text: str) -> list[dict]:
        return [{"role": "assistant", "content": text}]

    return {"prompt": [e.extra["messages"] for e in examples], "chosen": [reply(e.label) for e in examples],
            "rejected": [reply(e.extra["rejected"]) for e in examples]}
