"""Preference rows → examples, with errors naming file, line and field.

DPO rows hold a prompt, a chosen and a rejected completion, as text or in trl's conversational format
(graftkit/tasks/preference/chat.py); an example keeps the prompt in ``text``, the chosen completion in ``label``
(the reference its generations are scored against) and the rejected one in ``extra['rejected']``. KTO rows hold
a prompt, a completion and a desirable/undesirable label; a desirable completion is the example's reference.
"""
from __future__ import annotations

from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row, required_text
from graftkit.errors import DataError
from graftkit.tasks.common.generation.decoder import prompt_ids
from graftkit.tasks.common.generation.rows import CHAT, PAIR
from graftkit.tasks.preference import chat

TRUE, FALSE = ("true", "1", "yes", "desirable"), ("false", "0", "no", "undesirable")


def _desirable(row: Row, column: str) -> bool:
    raw: Any = row.values.get(column)
    text = str(raw).strip().lower()
    if isinstance(raw, bool) or text in TRUE + FALSE:
        return raw if isinstance(raw, bool) else text in TRUE
    raise DataError(row.path, f"KTO label {raw!r} is not true or false (desirable or not)", line=row.line,
                    field=column)


def row_example(row: Row, cfg, with_labels: bool = True) -> Example:
    """One example of ``cfg.method``'s row shape (a prompt alone without labels)."""
    if not with_labels and chat.is_chat(row, cfg.prompt_column):
        return chat.prompt_example(row, cfg.prompt_column)
    if cfg.method == "dpo" and chat.is_chat(row, cfg.prompt_column, cfg.chosen_column, cfg.rejected_column):
        return chat.pair_example(row, cfg)
    if cfg.method == "kto" and chat.is_chat(row, cfg.prompt_column, cfg.completion_column):
        raise DataError(row.path, "chat-format rows are read for DPO; KTO takes prompt and completion as text",
                        line=row.line, field=next(c for c in (cfg.prompt_column, cfg.completion_column)
                                                  if chat.is_chat(row, c)))
    prompt = required_text(row, cfg.prompt_column)
    if not with_labels:
        return Example(text=prompt, path=row.path, line=row.line, extra={"format": PAIR})
    if cfg.method == "kto":
        completion, good = required_text(row, cfg.completion_column), _desirable(row, cfg.label_column)
        return Example(text=prompt, label=completion if good else None, path=row.path, line=row.line,
                       extra={"format": PAIR, "completion": completion, "desirable": good})
    chosen, rejected = required_text(row, cfg.chosen_column), required_text(row, cfg.rejected_column)
    if chosen.strip() == rejected.strip():
        raise DataError(row.path, "the chosen and the rejected completion are identical, so there is no "
                        "preference to learn; fix or drop the row", line=row.line, field=cfg.rejected_column)
    return Example(text=prompt, label=chosen, path=row.path, line=row.line,
                   extra={"format": PAIR, "rejected": rejected})


def trl_columns(examples: list[Example], method: str) -> dict[str, list]:
    """The dataset columns trl's trainer of ``method`` reads: its conversational format for chat pairs, else its
    standard one (the task refuses a mix of the two)."""
    if examples and examples[0].extra.get("format") == CHAT:
        return chat.trl_columns(examples)
    prompts = [e.text for e in examples]
    if method == "kto":
        return {"prompt": prompts, "completion": [e.extra["completion"] for e in examples],
                "label": [e.extra["desirable"] for e in examples]}
    return {"prompt": prompts, "chosen": [e.label for e in examples],
            "rejected": [e.extra["rejected"] for e in examples]}


def check_prompt_lengths(examples: list[Example], tokenizer, max_length: int, field: str) -> None:
    """Refuse a row whose prompt alone fills ``max_length`` tokens: trl keeps the start of each sequence, so no
    completion token would be left (DPO drops such a pair without a word; KTO would learn from nothing)."""
    for e in examples:
        n = len(prompt_ids(tokenizer, e.extra["messages"] if e.extra.get("format") == CHAT else e.text))
        if n >= max_length:
            raise DataError(e.path, f"the prompt is {n} tokens, which fills data.max_length={max_length}, so no "
                            "completion token fits; raise data.max_length or shorten the prompt", line=e.line,
                            field=field)
