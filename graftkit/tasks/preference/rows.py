"""Preference rows → examples, with errors naming file, line and field.

DPO rows hold a prompt, a chosen and a rejected completion; an example keeps the prompt in ``text``, the chosen
completion in ``label`` (the reference its generations are scored against) and the rejected one in
``extra['rejected']``. KTO rows hold a prompt, a completion and a desirable/undesirable label; a desirable
completion is the example's reference.
"""
from __future__ import annotations

from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row, required_text
from graftkit.errors import DataError
from graftkit.tasks.common.generation.rows import PAIR

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
    """The dataset columns trl's trainer of ``method`` reads (its standard, non-conversational format)."""
    prompts = [e.text for e in examples]
    if method == "kto":
        return {"prompt": prompts, "completion": [e.extra["completion"] for e in examples],
                "label": [e.extra["desirable"] for e in examples]}
    return {"prompt": prompts, "chosen": [e.label for e in examples],
            "rejected": [e.extra["rejected"] for e in examples]}
