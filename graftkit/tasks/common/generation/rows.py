"""Rows of a generative data file → ``Example`` objects, with errors naming file, line and field.

Three row shapes are accepted:

- ``prompt`` + ``completion`` columns (names from ``task.prompt_column`` / ``task.completion_column``);
- a single text column (``data.text_column``): the whole text is the target, there is no prompt
  (causal_lm only);
- chat ``messages``: a list of ``{"role": system|user|assistant, "content": str}``; the last message
  must be the assistant's reply, which is the completion; earlier turns are the prompt (causal_lm only).

An ``Example`` keeps the prompt in ``text`` and the completion in ``label``; chat examples also keep
their prompt turns in ``extra["messages"]``.
"""
from __future__ import annotations

from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row, read_rows
from graftkit.errors import DataError

ROLES = ("system", "user", "assistant")
#: row shapes (``task.row_format``)
PAIR, TEXT, CHAT = "prompt_completion", "text", "chat"


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def _column(row: Row, column: str, hint: str) -> Any:
    if column not in row.values:
        raise DataError(row.path, f"missing column '{column}' (columns: {', '.join(map(str, row.values))}); {hint}",
                        line=row.line)
    return row.values[column]


def _messages(row: Row, column: str) -> list[dict]:
    """Validated chat turns of one row (the caller splits off the final assistant reply)."""
    raw = _column(row, column, "set task.messages_column")
    if not isinstance(raw, list) or not raw:
        raise DataError(row.path, "expected a non-empty list of {role, content} messages", line=row.line,
                        field=column)
    turns = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(row.path, f"message {i} must be an object with 'role' and 'content'", line=row.line,
                            field=f"{column}[{i}]")
        if m["role"] not in ROLES:
            raise DataError(row.path, f"unknown role {m['role']!r} (use one of: {', '.join(ROLES)})", line=row.line,
                            field=f"{column}[{i}].role")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise DataError(row.path, "empty message content", line=row.line, field=f"{column}[{i}].content")
        turns.append({"role": m["role"], "content": m["content"]})
    if not any(t["role"] == "assistant" for t in turns):
        raise DataError(row.path, "no assistant turn: the last message must be the assistant's reply (the text "
                        "the model learns to write)", line=row.line, field=column)
    if turns[-1]["role"] != "assistant":
        raise DataError(row.path, f"the last message is from '{turns[-1]['role']}'; it must be the assistant's "
                        "reply (the text the model learns to write)", line=row.line, field=f"{column}[{len(turns) - 1}]")
    return turns


def detect_format(row: Row, prompt_column: str, completion_column: str, messages_column: str,
                  text_column: str) -> str:
    """The row shape of a file, from its first row's columns."""
    cols = row.values
    if messages_column in cols:
        return CHAT
    if prompt_column in cols or completion_column in cols:
        return PAIR
    if text_column in cols:
        return TEXT
    raise DataError(row.path, f"cannot tell the row format: expected columns '{prompt_column}' + "
                    f"'{completion_column}', '{messages_column}' (chat) or '{text_column}' (plain text); "
                    f"found {', '.join(map(str, cols))}", line=row.line)


def row_example(row: Row, fmt: str, cfg, text_column: str, with_labels: bool = True) -> Example:
    """One validated Example of ``fmt`` (PAIR / TEXT / CHAT); ``cfg`` is the task's config."""
    if fmt == CHAT:
        turns = _messages(row, cfg.messages_column)
        prompt = turns[:-1] if with_labels else turns
        return Example(text=render_plain(prompt), label=turns[-1]["content"] if with_labels else None,
                       path=row.path, line=row.line, extra={"messages": prompt, "format": CHAT})
    if fmt == TEXT:
        value = _column(row, text_column, "set data.text_column")
        if _is_empty(value):
            raise DataError(row.path, "empty text", line=row.line, field=text_column)
        return Example(text="", label=str(value), path=row.path, line=row.line, extra={"format": TEXT})
    prompt = _column(row, cfg.prompt_column, "set task.prompt_column")
    if _is_empty(prompt):
        raise DataError(row.path, "empty prompt", line=row.line, field=cfg.prompt_column)
    completion = None
    if with_labels:
        completion = _column(row, cfg.completion_column, "set task.completion_column")
        if _is_empty(completion):
            raise DataError(row.path, "empty completion: there is nothing to learn from this row; fill it or "
                            "drop the row (data.drop_invalid: true drops such rows and counts them)",
                            line=row.line, field=cfg.completion_column)
        completion = str(completion)
    return Example(text=str(prompt), label=completion, path=row.path, line=row.line, extra={"format": PAIR})


def read_examples(path: str, data_cfg, cfg, allowed: tuple[str, ...],
                  with_labels: bool = True) -> tuple[list[Example], int]:
    """Examples of one file and the number of invalid rows dropped (``data.drop_invalid``)."""
    rows = read_rows(path, data_cfg.format, data_cfg.encoding)
    if not rows:
        raise DataError(path, "no rows")
    fmt = cfg.row_format if cfg.row_format != "auto" else detect_format(
        rows[0], cfg.prompt_column, cfg.completion_column, cfg.messages_column, data_cfg.text_column)
    if fmt not in allowed:
        raise DataError(path, f"{fmt} rows are not supported by task.type {cfg.type} (use: {', '.join(allowed)})")
    out, dropped = [], 0
    for row in rows:
        try:
            out.append(row_example(row, fmt, cfg, data_cfg.text_column, with_labels))
        except DataError:
            if not data_cfg.drop_invalid:
                raise
            dropped += 1
    if not out:
        raise DataError(path, "no usable rows" + (f" ({dropped} invalid rows dropped)" if dropped else ""))
    return out, dropped


def render_plain(messages: list[dict], generation_prompt: bool = True) -> str:
    """graftkit's plain chat template, used when the tokenizer has none::

        <|system|>
        You are ...
        <|user|>
        Hello
        <|assistant|>

    Each turn is ``<|role|>\\n`` + content + ``\\n``; with ``generation_prompt`` the text ends with
    ``<|assistant|>\\n``, after which the model writes the reply and then EOS.
    """
    text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return text + ("<|assistant|>\n" if generation_prompt else "")
