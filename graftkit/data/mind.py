"""MIND-format click logs (news.tsv + behaviors.tsv) and plain pairs CSVs → (history, candidate, label) rows.

news.tsv:      item id, category, subcategory, title, abstract, url, title entities, abstract entities
behaviors.tsv: impression id, user id, time, history (space-separated item ids), impressions
               (space-separated ``itemid-label``, label 1 = clicked)

Errors name the file, line and field.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from graftkit.errors import DataError


@dataclass(frozen=True)
class Impression:
    """One shown list: who, when, what they had read, and each candidate with its click label."""

    id: str
    user: str
    time: str
    history: tuple[str, ...]
    candidates: tuple[tuple[str, int], ...]
    line: int


def read_news(path: str | Path) -> dict[str, str]:
    """Item id → text (title, then abstract)."""
    path = Path(path)
    news: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not any(row):
                continue
            if len(row) < 4:
                raise DataError(str(path), f"expected at least 4 tab-separated fields (id, category, subcategory, "
                                           f"title), got {len(row)}", line=n)
            item, title = row[0].strip(), row[3].strip()
            abstract = row[4].strip() if len(row) > 4 else ""
            if not item:
                raise DataError(str(path), "empty item id", line=n, field="id")
            if not title and not abstract:
                raise DataError(str(path), "empty title and abstract", line=n, field="title")
            news[item] = f"{title}. {abstract}".strip(". ") if abstract else title
    return news


def read_behaviors(path: str | Path, news: dict[str, str]) -> list[Impression]:
    """Impressions of a behaviors.tsv; unknown item ids and bad labels are errors with their line."""
    path = Path(path)
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = line.rstrip("\n").split("\t")
            if len(row) != 5:
                raise DataError(str(path), f"expected 5 tab-separated fields (impression id, user, time, history, "
                                           f"impressions), got {len(row)}", line=n)
            imp_id, user, when, hist, imps = (x.strip() for x in row)
            history = tuple(h for h in hist.split() if h)
            for h in history:
                if h not in news:
                    raise DataError(str(path), f"history item {h!r} is not in news.tsv", line=n, field="history")
            cands = []
            for tok in imps.split():
                item, sep, label = tok.rpartition("-")
                if not sep or label not in ("0", "1"):
                    raise DataError(str(path), f"impression {tok!r} is not ITEMID-0 or ITEMID-1", line=n,
                                    field="impressions")
                if item not in news:
                    raise DataError(str(path), f"candidate {item!r} is not in news.tsv", line=n, field="impressions")
                cands.append((item, int(label)))
            if not cands:
                raise DataError(str(path), "no candidates", line=n, field="impressions")
            out.append(Impression(imp_id, user, when, history, tuple(cands), n))
    if not out:
        raise DataError(str(path), "no impressions")
    return out


def read_mind(folder: str | Path) -> tuple[dict[str, str], list[Impression]]:
    """news and impressions of a MIND folder (``news.tsv`` + ``behaviors.tsv``)."""
    folder = Path(folder)
    for name in ("news.tsv", "behaviors.tsv"):
        if not (folder / name).is_file():
            raise DataError(str(folder), f"a MIND folder needs {name}")
    news = read_news(folder / "news.tsv")
    return news, read_behaviors(folder / "behaviors.tsv", news)


def history_text(history: tuple[str, ...] | list[str], news: dict[str, str], max_history: int, sep: str) -> str:
    """The most recent ``max_history`` history items' texts, oldest first (empty history → '(no history)')."""
    items = list(history)[-max_history:]
    return sep.join(news[i] for i in items) if items else "(no history)"
