"""Word segmentation shared by vocabulary extension and whole-word masking.

Chinese (and other CJK) text has no spaces, so its words come from ``jieba``; any other run of
text is cut into ``\\w+`` words and single punctuation marks. Offsets are character offsets into
the original string, so they line up with a fast tokenizer's ``offset_mapping``.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def has_cjk(text: str) -> bool:
    """True if ``text`` holds at least one CJK ideograph."""
    return _CJK.search(text) is not None


@lru_cache(maxsize=1)
def _jieba():
    """jieba's default tokenizer, built once (loading its dictionary takes about a second)."""
    import jieba  # heavy optional dependency: only Chinese text needs it

    jieba.setLogLevel(logging.WARNING)  # jieba's own logger; otherwise it prints its cache path on load
    jieba.initialize()
    return jieba.dt


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the words of ``text``; whitespace belongs to no word.

    Text with CJK ideographs is segmented by jieba's dictionary (no HMM guesses for unseen words; it passes Latin runs and digits through as
    words of their own); other text is split on ``\\w+`` runs and single punctuation marks.
    """
    if has_cjk(text):
        return [(s, e) for w, s, e in _jieba().tokenize(text, HMM=False) if w.strip()]
    return [m.span() for m in _WORD.finditer(text)]


def words(text: str) -> list[str]:
    """The words of ``text`` (see ``word_spans``)."""
    return [text[s:e] for s, e in word_spans(text)]
