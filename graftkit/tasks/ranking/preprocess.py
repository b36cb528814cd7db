"""Ranking rows from a MIND folder or a pairs CSV, and the two-tower model's contrastive training rows.

Both architectures read the same examples: ``text`` is the user's history text, ``text_pair`` the
candidate's, ``label`` "1" (clicked) or "0", and ``extra["impression"]`` groups the candidates shown together.
"""
from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from graftkit.data import mind
from graftkit.data.dataset import Example
from graftkit.data.readers import READERS, Row, read_rows
from graftkit.errors import DataError

POSITIVE = "1"
#: a MIND folder (news.tsv + behaviors.tsv): ``data.format: mind``, or ``auto`` for any folder
MIND = "mind"
READERS.register_task_format(MIND, "ranking")


def read_examples(path: str, task_cfg, data_cfg, with_labels: bool, parse_label) -> list[Example]:
    """Pairs from a MIND folder (the training folder keeps ``negatives_per_positive`` negatives per click)
    or from a CSV."""
    if data_cfg.format == MIND or (data_cfg.format == "auto" and Path(path).is_dir()):
        subsample = data_cfg.train is not None and Path(path) == Path(data_cfg.train)
        return read_mind_examples(path, task_cfg, subsample)
    return read_pair_examples(path, data_cfg, with_labels, parse_label)


def read_mind_examples(folder: str, cfg, subsample: bool) -> list[Example]:
    news, impressions = mind.read_mind(folder)
    rng = random.Random(0)
    out = []
    for imp in impressions:
        hist = mind.history_text(imp.history, news, cfg.max_history, cfg.history_separator)
        cands = list(imp.candidates)
        if subsample and cfg.negatives_per_positive:
            pos = [c for c in cands if c[1] == 1]
            neg = [c for c in cands if c[1] == 0]
            cands = pos + rng.sample(neg, min(len(neg), cfg.negatives_per_positive * max(len(pos), 1)))
        for item, label in cands:
            out.append(Example(text=hist, text_pair=news[item], label=str(label),
                               path=str(Path(folder) / "behaviors.tsv"), line=imp.line,
                               extra={"impression": imp.id, "item": item}))
    return out


def read_pair_examples(path: str, data_cfg, with_labels: bool, parse_label) -> list[Example]:
    if not data_cfg.text_pair_column:
        raise DataError(path, "a ranking CSV needs data.text_pair_column (the candidate text column); "
                              "data.text_column is the user's history text")
    out = []
    for row in read_rows(path, data_cfg.format, data_cfg.encoding):
        texts = []
        for col in (data_cfg.text_column, data_cfg.text_pair_column):
            value = row.values.get(col)
            if value is None or not str(value).strip():
                raise DataError(row.path, "missing or empty text", line=row.line, field=col)
            texts.append(str(value))
        label = parse_label(row.values.get(data_cfg.label_column), row) if with_labels else None
        out.append(Example(text=texts[0], text_pair=texts[1], label=label, path=row.path, line=row.line,
                           extra={"impression": str(row.values.get("impression", f"line{row.line}"))}))
    if not out:
        raise DataError(path, "no rows")
    return out


def parse_click(raw: Any, row: Row, column: str) -> str:
    """'1'/'0' from the usual spellings of a click label; anything else names the file, line and column."""
    text = str(raw).strip() if raw is not None else ""
    if text in ("1", "1.0", "true", "True"):
        return "1"
    if text in ("0", "0.0", "false", "False"):
        return "0"
    raise DataError(row.path, f"label {raw!r} is not 0 or 1 (clicked)", line=row.line, field=column)


def impression_of(example: Example) -> str:
    """The impression an example was shown in (its file:line when the data names none)."""
    return (example.extra or {}).get("impression", f"{example.path}:{example.line}")


def contrastive_rows(train: list[Example], negatives: int, seed: int) -> dict[str, list[str]]:
    """(anchor = history, positive = clicked candidate, negative_1..negative_n) columns for the two-tower loss.

    Each click becomes one row whose hard negatives are ``negatives`` candidates the same impression showed
    and the user did not click (drawn with replacement when the impression showed fewer; from other
    impressions' non-clicks when it showed none), as in MIND's negative sampling (NRMS's npratio).

    Raises:
        DataError: the training data has no click or no non-click.
    """
    by_imp: dict[str, list[Example]] = defaultdict(list)
    for e in train:
        by_imp[impression_of(e)].append(e)
    pool = [e.text_pair for e in train if e.label != POSITIVE]
    if not pool or len(pool) == len(train):
        raise DataError(train[0].path, "two-tower training needs clicked (1) and non-clicked (0) candidates")
    rng = random.Random(seed)
    cols: dict[str, list[str]] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    for rows in by_imp.values():
        shown = [e.text_pair for e in rows if e.label != POSITIVE]
        for e in (r for r in rows if r.label == POSITIVE):
            source = [t for t in (shown or pool) if t != e.text_pair]  # never the click itself
            picks = rng.sample(source, negatives) if len(source) >= negatives else rng.choices(source, k=negatives)
            cols["anchor"].append(e.text)
            cols["positive"].append(e.text_pair)
            for i, text in enumerate(picks):
                cols[f"negative_{i + 1}"].append(text)
    return cols
