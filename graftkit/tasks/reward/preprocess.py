"""Preference rows → examples, and (prompt, response) → token ids, following trl's reward conventions.

A training row holds a prompt (``data.text_column``), a chosen and a rejected response (``task.chosen_column``,
``task.rejected_column``); an input to score is (prompt, response). As trl's ``RewardTrainer`` does for
non-conversational data, the response ends with the tokenizer's EOS (when it has one), so a decoder reads the
reward at the end of the response. Truncation drops tokens from the longer of prompt and response.
"""
from __future__ import annotations

from typing import Any, Sequence

from graftkit.data.dataset import Example
from graftkit.data.readers import Row, required_text
from graftkit.errors import DataError


EMPTY = "empty text: a preference row needs a prompt and both responses"


def row_example(row: Row, prompt_column: str, chosen_column: str, rejected_column: str) -> Example:
    """One preference pair: ``text`` is the prompt, ``text_pair`` the chosen response, ``extra['rejected']``.

    Raises:
        DataError: a column is missing or empty, or the two responses are the same (naming file, line and field).
    """
    prompt, chosen, rejected = (required_text(row, c, EMPTY) for c in (prompt_column, chosen_column,
                                                                       rejected_column))
    if chosen.strip() == rejected.strip():
        raise DataError(row.path, "the chosen and the rejected response are identical, so there is no preference "
                        "to learn; fix or drop the row", line=row.line, field=rejected_column)
    return Example(text=prompt, text_pair=chosen, path=row.path, line=row.line, extra={"rejected": rejected})


def scored_example(row: Row, prompt_column: str, response_column: str) -> Example:
    """One (prompt, response) input to score (a row without preference columns)."""
    return Example(text=required_text(row, prompt_column, EMPTY), text_pair=required_text(row, response_column, EMPTY),
                   path=row.path, line=row.line)


def flatten(inputs: Sequence[Any]) -> tuple[list[tuple[str, str]], list[int]]:
    """(prompt, response) rows of a batch and how many rows each input gave: a (prompt, response) input gives
    one; a (prompt, chosen, rejected) pair gives two, chosen then rejected."""
    pairs, sizes = [], []
    for x in inputs:
        if not isinstance(x, (tuple, list)) or len(x) not in (2, 3):
            raise ValueError("a reward run scores (prompt, response) pairs; give each text a --pair response")
        pairs += [(x[0], r) for r in x[1:]]
        sizes.append(len(x) - 1)
    return pairs, sizes


def encode(pairs: Sequence[tuple[str, str]], tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each (prompt, response): the tokenizer's pair encoding, EOS last when the tokenizer has one."""
    eos = tokenizer.eos_token_id
    room = max_length - (eos is not None)
    enc = tokenizer([p for p, _ in pairs], [r for _, r in pairs], truncation="longest_first", max_length=room)
    return [ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids for ids in enc["input_ids"]]
