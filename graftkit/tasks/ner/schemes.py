"""Tag schemes (IOB1, IOB2/BIO, BIOES, BMES): tags ↔ entity spans, detection and valid transitions.

Spans are ``(start, end, type)`` over positions with ``end`` exclusive. Reading tags is strict by
default: a tag sequence the scheme does not allow raises a ``DataError`` naming the file, line and
token; with ``repairs`` given, each problem is fixed by a fixed rule and described in that list.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from graftkit.errors import DataError

Span = tuple[int, int, str]
#: prefix → role for every scheme graftkit reads; "BIO" is another name for IOB2
ROLES: dict[str, dict[str, str]] = {
    "IOB1": {"B": "begin", "I": "inside"},
    "IOB2": {"B": "begin", "I": "inside"},
    "BIO": {"B": "begin", "I": "inside"},
    "BIOES": {"B": "begin", "I": "inside", "E": "end", "S": "single"},
    "BMES": {"B": "begin", "M": "inside", "E": "end", "S": "single"},
}
#: schemes a model can be trained to emit (internal schemes), with their prefixes in label order
INTERNAL = {"IOB2": ("B", "I"), "BIOES": ("B", "I", "E", "S")}
#: where a tag came from, for error messages: i → (file, line, token)
Locate = Callable[[int], tuple[str, int, str]]


def _where(locate: Locate | None, i: int) -> tuple[str, int | None, str]:
    return locate(i) if locate else ("tags", None, f"#{i}")


def split_tag(tag: str, scheme: str, locate: Locate | None = None, i: int = 0) -> tuple[str, str | None]:
    """``"B-PER"`` → ``("begin", "PER")``; ``"O"`` → ``("O", None)``; anything else is a DataError."""
    if tag == "O":
        return "O", None
    prefix, sep, typ = tag.partition("-")
    role = ROLES[scheme].get(prefix)
    if not sep or not typ or role is None:
        path, line, token = _where(locate, i)
        raise DataError(path, f"token {token!r}: tag {tag!r} is not valid in scheme {scheme} (expected 'O' or "
                        f"one of {', '.join(p + '-TYPE' for p in ROLES[scheme])}); set task.file_scheme to the "
                        "file's scheme", line=line)
    return role, typ


def detect_scheme(sequences: Sequence[Sequence[str]]) -> str:
    """Guess the scheme of tag sequences from the prefixes used and how entities start."""
    prefixes = {t.split("-", 1)[0] for seq in sequences for t in seq if t != "O"}
    if "M" in prefixes:
        return "BMES"
    if prefixes & {"E", "S"}:
        return "BIOES"
    i_starts = b_starts = 0
    for seq in sequences:
        prev = "O"
        for t in seq:
            if t != "O":
                same = prev != "O" and prev.split("-", 1)[1:] == t.split("-", 1)[1:]
                if not same:
                    i_starts += t.startswith("I-")
                    b_starts += t.startswith("B-")
            prev = t
    return "IOB1" if i_starts and not b_starts else "IOB2"


def tags_to_spans(tags: Sequence[str], scheme: str, locate: Locate | None = None,
                  repairs: list[str] | None = None) -> list[Span]:
    """Entity spans of one tag sequence.

    Args:
        tags: one tag per position, e.g. ``["B-PER", "I-PER", "O"]``.
        scheme: a key of ``ROLES``.
        locate: maps a position to (file, line, token) for messages.
        repairs: when given, invalid sequences are repaired (an entity that is not continued or
            closed properly is closed at the previous token; a continuation without an entity
            starts one) and one message per repair is appended; otherwise they raise DataError.
    """
    explicit_end = "E" in ROLES[scheme]
    spans: list[Span] = []
    open_start, open_type = -1, None

    def problem(i: int, msg: str, fix: str) -> None:
        path, line, token = _where(locate, i)
        text = f"token {token!r}: {msg}"
        if repairs is None:
            raise DataError(path, f"{text} under scheme {scheme}; fix the tag, set task.file_scheme to the "
                            "file's scheme, or set task.repair_tags: true", line=line)
        repairs.append(f"{path}, line {line}: {text}; {fix}")

    def close(end: int) -> None:
        nonlocal open_type
        spans.append((open_start, end, open_type))
        open_type = None

    for i, tag in enumerate(tags):
        role, typ = split_tag(tag, scheme, locate, i)
        if role in ("O", "begin", "single") and open_type is not None:
            if explicit_end:
                problem(i, f"the {open_type} entity is not closed with E-{open_type} before {tag!r}",
                        "ended it at the previous token")
            close(i)
        if role == "begin":
            if scheme == "IOB1" and not (spans and spans[-1][1] == i and spans[-1][2] == typ):
                problem(i, f"{tag!r} in IOB1 may only separate two adjacent {typ} entities", f"read as I-{typ}")
            open_start, open_type = i, typ
        elif role == "inside":
            if open_type == typ:
                continue
            if scheme != "IOB1":
                problem(i, f"{tag!r} continues no {typ} entity (previous tag "
                        f"{tags[i - 1] if i else 'is the sentence start'!r})", "started one here")
            if open_type is not None:
                close(i)
            open_start, open_type = i, typ
        elif role == "end":
            if open_type == typ:
                close(i + 1)
            else:
                problem(i, f"{tag!r} ends no open {typ} entity", "read as a one-token entity")
                if open_type is not None:
                    close(i)
                spans.append((i, i + 1, typ))
        elif role == "single":
            spans.append((i, i + 1, typ))
    if open_type is not None:
        if explicit_end:
            problem(len(tags) - 1, f"the {open_type} entity is still open at the end of the sentence",
                    "ended it there")
        close(len(tags))
    return spans


def spans_to_tags(n: int, spans: Sequence[Span], scheme: str) -> list[str]:
    """Tags for ``n`` positions holding non-overlapping ``spans``, written in ``scheme``."""
    tags = ["O"] * n
    roles = {v: k for k, v in ROLES[scheme].items()}
    prev_end: dict[int, str] = {}
    for start, end, typ in sorted(spans):
        if "end" in roles and end - start == 1:
            tags[start] = f"{roles['single']}-{typ}"
            continue
        begin = roles["begin"]
        if scheme == "IOB1" and prev_end.get(start) != typ:
            begin = "I"  # IOB1 writes B only between two adjacent entities of one type
        tags[start] = f"{begin}-{typ}"
        for k in range(start + 1, end):
            tags[k] = f"{roles['inside']}-{typ}"
        if "end" in roles:
            tags[end - 1] = f"{roles['end']}-{typ}"
        prev_end[end] = typ
    return tags


def label_list(types: Sequence[str], scheme: str) -> list[str]:
    """The model's tag set: ``O`` then each type's tags in the internal ``scheme``."""
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in INTERNAL[scheme]]


def allowed_transitions(labels: Sequence[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (start, end, transition[from, to]) masks of what ``scheme`` allows between ``labels``."""
    parts = [(t.split("-", 1) + [None])[:2] if t != "O" else ("O", None) for t in labels]
    n = len(labels)
    start, end, trans = np.ones(n, bool), np.ones(n, bool), np.ones((n, n), bool)
    closes = scheme == "BIOES"
    for j, (p, typ) in enumerate(parts):
        start[j] = p in ("O", "B", "S")
        end[j] = p in ("O", "E", "S") if closes else True
        for i, (q, ptyp) in enumerate(parts):
            inside_prev = q in ("B", "I") and ptyp is not None
            if p in ("I", "E"):
                ok = q in ("B", "I") and ptyp == typ
            else:  # O, B, S start fresh: under BIOES the previous entity must be closed
                ok = not (closes and inside_prev)
            trans[i, j] = ok
    return start, end, trans


#: score of a transition the scheme forbids: low enough that Viterbi never takes it, and (in training)
#: its gradient is ~0, so a pinned value stays pinned
FORBIDDEN = -10000.0


def pin_forbidden(crf, masks: tuple[np.ndarray, np.ndarray, np.ndarray],
                  scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """Set a pytorch-crf ``CRF``'s (start, end, transition) scores to FORBIDDEN where ``masks``
    (from ``allowed_transitions``) disallow them; with ``scores``, copy those in first."""
    import torch

    params = (crf.start_transitions, crf.end_transitions, crf.transitions)
    with torch.no_grad():
        for param, mask, score in zip(params, masks, scores or (None,) * 3):
            if score is not None:
                param.copy_(torch.as_tensor(score, dtype=param.dtype))
            param.masked_fill_(~torch.as_tensor(mask, device=param.device), FORBIDDEN)


def is_valid(tag_ids: Sequence[int], labels: Sequence[str], scheme: str) -> bool:
    """Whether a tag-id sequence obeys ``scheme`` (used by tests and as a decoding guard)."""
    start, end, trans = allowed_transitions(labels, scheme)
    if not len(tag_ids):
        return True
    if not (start[tag_ids[0]] and end[tag_ids[-1]]):
        return False
    return all(trans[a, b] for a, b in zip(tag_ids, tag_ids[1:]))
