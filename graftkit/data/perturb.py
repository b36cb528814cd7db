"""Seeded text perturbations for robustness reports: typos, case, punctuation, whitespace, Chinese characters.

A text is cut into words (a run of non-space characters; every CJK character is a word of its
own) and the separators between them. A perturbation rewrites some words (or separators) and
records where each original word ends up, so entity spans can be mapped onto the perturbed text.

Each perturbation touches every eligible word with probability ``rate`` (at least one word when
any is eligible). The random generator is derived from ``(seed, name, key)`` (``key`` is usually
the row index), so a report is reproducible and independent of batching or row order.
"""
from __future__ import annotations

import random
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{CJK}]|[^\s{CJK}]+")
_CJK_CHAR = re.compile(rf"[{CJK}]")

_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _keyboard_neighbours() -> dict[str, str]:
    """QWERTY neighbours of each letter (same row left/right, rows above and below)."""
    out = {}
    for r, row in enumerate(_ROWS):
        for i, c in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for r2 in (r - 1, r + 1):
                if 0 <= r2 < len(_ROWS):
                    near += [_ROWS[r2][j] for j in (i - 1, i, i + 1) if 0 <= j < len(_ROWS[r2])]
            out[c] = "".join(near)
    return out


KEYBOARD = _keyboard_neighbours()


def _letters(word: str) -> list[int]:
    return [i for i, c in enumerate(word) if c.isalpha() and not _CJK_CHAR.match(c)]


def _swappable(word: str) -> list[int]:
    return [i for i in range(len(word) - 1) if word[i] != word[i + 1] and word[i].isalpha() and word[i + 1].isalpha()
            and not _CJK_CHAR.match(word[i])]


def _swap(word: str, rng: random.Random) -> str:
    i = rng.choice(_swappable(word))
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def _drop(word: str, rng: random.Random) -> str:
    i = rng.choice(_letters(word))
    return word[:i] + word[i + 1:]


def _insert(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) + 1)
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]


def _keyboard(word: str, rng: random.Random) -> str:
    i = rng.choice([j for j in _letters(word) if word[j].lower() in KEYBOARD])
    c = rng.choice(KEYBOARD[word[i].lower()])
    return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:]


def _case(word: str, rng: random.Random) -> str:
    options = [w for w in (word.upper(), word.lower(), word.title(), word.swapcase()) if w != word]
    return rng.choice(options)


def _no_punct(word: str, rng: random.Random) -> str:
    return "".join(c for c in word if not unicodedata.category(c).startswith("P"))


def _zh_delete(word: str, rng: random.Random) -> str:
    return ""


def _zh_duplicate(word: str, rng: random.Random) -> str:
    return word + word


@dataclass(frozen=True)
class Perturbation:
    """A word rewrite and which words it may touch; ``every_word`` ignores the rate (punctuation removal)."""

    rewrite: Callable[[str, random.Random], str]
    eligible: Callable[[str], bool]
    every_word: bool = False


PERTURBATIONS: dict[str, Perturbation] = {
    "typo_swap": Perturbation(_swap, lambda w: bool(_swappable(w))),
    "typo_drop": Perturbation(_drop, lambda w: len(_letters(w)) >= 2),
    "typo_insert": Perturbation(_insert, lambda w: len(_letters(w)) >= 1),
    "typo_keyboard": Perturbation(_keyboard, lambda w: any(w[j].lower() in KEYBOARD for j in _letters(w))),
    "case": Perturbation(_case, lambda w: w.upper() != w.lower()),
    "punctuation": Perturbation(_no_punct, lambda w: any(unicodedata.category(c).startswith("P") for c in w),
                                every_word=True),
    "whitespace": Perturbation(lambda w, rng: w, lambda w: False),  # separators only, see _noisy_separators
    "zh_char_delete": Perturbation(_zh_delete, lambda w: bool(_CJK_CHAR.fullmatch(w))),
    "zh_char_duplicate": Perturbation(_zh_duplicate, lambda w: bool(_CJK_CHAR.fullmatch(w))),
}
LATIN = ("typo_swap", "typo_drop", "typo_insert", "typo_keyboard", "case", "punctuation", "whitespace")
CHINESE = ("zh_char_delete", "zh_char_duplicate", "punctuation", "whitespace")


@dataclass
class Perturbed:
    """The perturbed text and, per original word, its new ``(start, end)`` (``start == end``: deleted)."""

    text: str
    words: list[tuple[int, int]]


def word_offsets(text: str) -> list[tuple[int, int]]:
    """Character offsets of the words of ``text`` (CJK characters are words of their own)."""
    return [m.span() for m in _WORD.finditer(text)]


def is_chinese(texts: Sequence[str]) -> bool:
    """True when most characters of ``texts`` (non-space) are CJK."""
    chars = "".join(texts).replace(" ", "")
    return bool(chars) and len(_CJK_CHAR.findall(chars)) / len(chars) > 0.3


def _rng(seed: int, name: str, key: object) -> random.Random:
    return random.Random(f"{seed}:{name}:{key}")  # str seeds hash with sha512: stable across processes


def _chosen(eligible: list[int], rate: float, rng: random.Random) -> set[int]:
    chosen = {i for i in eligible if rng.random() < rate}
    if eligible and not chosen:
        chosen = {rng.choice(eligible)}
    return chosen


def _noisy_separators(seps: list[str], rate: float, rng: random.Random) -> list[str]:
    noise = ["  ", "\t", " \n ", "   "]
    # an empty separator (between CJK characters) gets a space; a space gets longer or other whitespace
    out = [s if rng.random() >= rate else (rng.choice(noise) if s else " ") for s in seps]
    out[0], out[-1] = out[0] + " ", out[-1] + "  "  # leading / trailing space
    return out


def perturb(text: str, name: str, seed: int, key: object = 0, rate: float = 0.1,
            words: Sequence[tuple[int, int]] | None = None) -> Perturbed:
    """Apply perturbation ``name`` to ``text``.

    Args:
        text: the input.
        name: a key of ``PERTURBATIONS``.
        seed: the report's seed; with ``key`` it fixes the random choices.
        key: distinguishes rows (e.g. the row index).
        rate: probability that each eligible word (or separator) is touched.
        words: word offsets to use (NER examples bring their own); default ``word_offsets(text)``.
    """
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    spec, rng = PERTURBATIONS[name], _rng(seed, name, key)
    offsets = list(words) if words is not None else word_offsets(text)
    tokens = [text[s:e] for s, e in offsets]
    seps = [text[(offsets[i - 1][1] if i else 0):(offsets[i][0] if i < len(offsets) else len(text))]
            for i in range(len(offsets) + 1)]
    eligible = [i for i, w in enumerate(tokens) if spec.eligible(w)]
    chosen = set(eligible) if spec.every_word else _chosen(eligible, rate, rng)
    new_tokens = [spec.rewrite(w, rng) if i in chosen else w for i, w in enumerate(tokens)]
    if name == "whitespace":
        seps = _noisy_separators(seps, rate, rng)
    parts, new_offsets, pos = [], [], 0
    for i, tok in enumerate(new_tokens):
        parts.append(seps[i])
        pos += len(seps[i])
        new_offsets.append((pos, pos + len(tok)))
        parts.append(tok)
        pos += len(tok)
    parts.append(seps[-1])
    return Perturbed("".join(parts), new_offsets)


def map_spans(spans: Sequence[Sequence], old_words: Sequence[tuple[int, int]],
              perturbed: Perturbed) -> list[list]:
    """Entity spans ``[start, end, type]`` of the original text moved onto the perturbed text.

    A span covers the words it overlaps; it starts where its first surviving word starts and ends
    where its last surviving word ends. A span whose words were all deleted is dropped.
    """
    out = []
    for start, end, label in spans:
        inside = [j for j, (s, e) in enumerate(old_words) if s < end and e > start]
        kept = [perturbed.words[j] for j in inside if perturbed.words[j][1] > perturbed.words[j][0]]
        if kept:
            out.append([kept[0][0], kept[-1][1], label])
    return out
