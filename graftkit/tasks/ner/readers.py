"""Readers for NER data: CoNLL columns, character-per-line Chinese, JSON Lines spans, CLUENER2020, hub rows.

Each reader returns ``Example`` objects with the sentence as ``text``, gold entities as
``label`` (``[start, end, type]`` character spans, end exclusive) and the sentence's words as
``extra["words"]`` (character offsets). Words are the units the model labels: the file's tokens
for column formats; for span formats the text is split like BERT's pre-tokenizer (runs of letters
and digits, each punctuation mark, each CJK character) and cut at every entity boundary, so that
spans map back to exact character offsets.

The four file formats are registered here, as formats of the ner task (``READERS``); the file settings
(``task.tag_column``, ``task.file_scheme``, ``task.strip_segment_digit``, ``task.repair_tags``) are the
task's keys, the rest (``data.format``, ``data.encoding``, ``data.text_column``) the data section's.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from graftkit.config import DataConfig
from graftkit.data.dataset import Example
from graftkit.data.readers import READERS, Row, read_text
from graftkit.errors import DataError
from graftkit.tasks.ner.config import NerConfig
from graftkit.tasks.ner.schemes import detect_scheme, tags_to_spans

log = logging.getLogger("graftkit.ner")
# CJK ideographs, the ranges BERT's tokenizer splits into single characters
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
FORMATS = ("conll", "char_conll", "spans_jsonl", "cluener")
for _name in FORMATS:
    READERS.register_task_format(_name, "ner")


def split_words(text: str, cuts: set[int] | None = None) -> list[tuple[int, int]]:
    """Word offsets of ``text``; a word containing a position in ``cuts`` is split there."""
    words = []
    for m in WORD_RE.finditer(text):
        s, e = m.span()
        inner = sorted(c for c in (cuts or ()) if s < c < e)
        for a, b in zip([s] + inner, inner + [e]):
            words.append((a, b))
    return words


def detect_ner_format(path: str, cfg: DataConfig, task: NerConfig | None = None) -> str:
    """``data.format`` when set, else JSON with a ``label`` mapping → cluener, other JSON → spans_jsonl,
    anything else → conll (char_conll when most tokens are single CJK characters)."""
    if cfg.format in FORMATS:
        return cfg.format
    if cfg.format != "auto":
        raise DataError(path, f"data.format '{cfg.format}' is not an NER format; use one of: auto, {', '.join(FORMATS)}")
    text = read_text(path, cfg.encoding)
    if Path(path).suffix.lower() in (".json", ".jsonl", ".ndjson"):
        first = next((ln for ln in text.splitlines() if ln.strip()), "{}")
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            obj = {}
        return "cluener" if isinstance(obj, dict) and isinstance(obj.get("label"), dict) else "spans_jsonl"
    tokens = [ln.split("\t" if "\t" in ln else None)[0] for ln in text.splitlines()[:2000] if ln.strip()]
    if (task or NerConfig()).strip_segment_digit:
        tokens = [re.sub(r"(?<=.)\d+$", "", t) for t in tokens]
    single = sum(1 for t in tokens if len(t) == 1)
    cjk = sum(1 for t in tokens if re.fullmatch(f"[{_CJK}]", t))
    return "char_conll" if tokens and cjk >= 0.5 * len(tokens) and single >= 0.95 * len(tokens) else "conll"


def read_ner(path: str, cfg: DataConfig, task: NerConfig | None = None,
             with_labels: bool = True) -> tuple[list[Example], str]:
    """Read one NER file into examples; returns them and the tag scheme the file was read with
    (``spans`` for span formats). ``task`` holds the file settings (defaults when None); repairs
    (``task.repair_tags``) are logged one per line."""
    task = task or NerConfig()
    fmt = detect_ner_format(path, cfg, task)
    repairs: list[str] | None = [] if task.repair_tags else None
    if fmt in ("conll", "char_conll"):
        examples, scheme = _read_columns(path, cfg, task, fmt == "char_conll", repairs)
    else:
        examples, scheme = _read_span_lines(path, cfg, task, fmt, repairs, with_labels), "spans"
    _log_repairs(repairs)
    if not examples:
        raise DataError(path, "no sentences found")
    return examples, scheme


#: tag-list columns of hub token datasets, tried in order when data.label_column names none of them
HUB_TAG_COLUMNS = ("ner_tags", "tags")


def read_ner_rows(rows: list[Row], cfg: DataConfig, task: NerConfig | None = None,
                  with_labels: bool = True) -> tuple[list[Example], str]:
    """Rows of a hub split: ``tokens`` with a tag list (``data.label_column``, else ``ner_tags`` or ``tags``;
    class ids already named by the hub reader), or ``data.text_column`` with ``entities`` spans like spans_jsonl.
    Returns the examples and the tag scheme (``spans`` for span rows)."""
    task = task or NerConfig()
    repairs: list[str] | None = [] if task.repair_tags else None
    first = rows[0].values
    tag_key = next((c for c in (cfg.label_column, *HUB_TAG_COLUMNS) if isinstance(c, str) and c in first), None)
    if "tokens" in first and tag_key:
        scheme = _file_scheme(task, [[str(t) for t in r.values.get(tag_key) or []] for r in rows])
        examples = [_tokens_tags(r.values, r.path, r.line, repairs, tag_key, scheme) for r in rows]
    else:
        examples = [_span_object(r.values, r.path, r.line, cfg, task, "spans_jsonl", repairs, with_labels)
                    for r in rows]
        scheme = "spans"
    _log_repairs(repairs)
    return examples, scheme


def _log_repairs(repairs: list[str] | None) -> None:
    for msg in repairs or []:
        log.warning("repaired: %s", msg)


def _file_scheme(task: NerConfig, tag_sequences: list[list[str]]) -> str:
    """``task.file_scheme`` (BIO is IOB2), or the scheme the tags themselves show when it is ``auto``."""
    scheme = "IOB2" if task.file_scheme == "BIO" else task.file_scheme
    return detect_scheme(tag_sequences) if scheme == "auto" else scheme


# -- column formats ---------------------------------------------------------------------------
def _read_columns(path: str, cfg: DataConfig, task: NerConfig, chars: bool,
                  repairs: list[str] | None) -> tuple[list[Example], str]:
    sentences: list[list[tuple[str, str, int]]] = []
    current: list[tuple[str, str, int]] = []
    ncols, first_line = None, 0
    for n, line in enumerate(read_text(path, cfg.encoding).splitlines(), start=1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        if ncols is None:
            ncols, first_line = len(fields), n
            if ncols < 2:
                raise DataError(path, f"token {fields[0]!r}: expected a token and a tag separated by a tab or "
                                "spaces, found one column", line=n)
            if not (0 < task.tag_column < ncols or -ncols < task.tag_column < 0):
                raise DataError(path, f"task.tag_column={task.tag_column} does not name a tag column of this "
                                f"{ncols}-column file (use 1..{ncols - 1} or -1 for the last)", line=n)
        if len(fields) != ncols:
            msg = f"token {fields[0]!r}: {len(fields)} columns, but line {first_line} has {ncols}"
            if repairs is None:
                raise DataError(path, msg + "; fix the line or set task.repair_tags: true to skip it", line=n)
            repairs.append(f"{path}, line {n}: {msg}; line skipped")
            continue
        token, tag = fields[0], fields[task.tag_column].strip()
        if task.strip_segment_digit:
            m = re.fullmatch(r"(.+?)(\d+)", token, re.S)
            if not m:
                raise DataError(path, f"token {token!r}: task.strip_segment_digit expects one character followed "
                                "by its segment digits (e.g. '科0')", line=n)
            token = m.group(1)
        current.append((token, tag, n))
    if current:
        sentences.append(current)
    scheme = _file_scheme(task, [[t for _, t, _ in s] for s in sentences])
    sep = "" if chars else " "
    out = []
    for sent in sentences:
        words, pos = [], 0
        for token, _, _ in sent:
            words.append((pos, pos + len(token)))
            pos += len(token) + len(sep)
        text = sep.join(t for t, _, _ in sent)
        locate = lambda i, s=sent: (path, s[i][2], s[i][0])  # noqa: E731
        spans = tags_to_spans([t for _, t, _ in sent], scheme, locate, repairs)
        label = [[words[a][0], words[b - 1][1], typ] for a, b, typ in spans]
        out.append(Example(text=text, label=label, path=path, line=sent[0][2], extra={"words": words}))
    return out, scheme


# -- span formats -----------------------------------------------------------------------------
def _read_span_lines(path: str, cfg: DataConfig, task: NerConfig, fmt: str, repairs: list[str] | None,
                     with_labels: bool) -> list[Example]:
    out = []
    for n, line in enumerate(read_text(path, cfg.encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err.msg} at column {err.colno})", line=n) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object per line, got {type(obj).__name__}", line=n)
        out.append(_span_object(obj, path, n, cfg, task, fmt, repairs, with_labels))
    return out


def _span_object(obj: dict, path: str, n: int, cfg: DataConfig, task: NerConfig, fmt: str,
                 repairs: list[str] | None, with_labels: bool) -> Example:
    """One record of a span format (a JSON line or a hub row)."""
    if fmt == "spans_jsonl" and "tokens" in obj:
        scheme = "IOB2" if task.file_scheme in ("auto", "BIO") else task.file_scheme
        return _tokens_tags(obj, path, n, repairs, "tags", scheme)
    text = obj.get(cfg.text_column)
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, "missing or empty text", line=n, field=cfg.text_column)
    raw = _cluener_spans(obj, text, path, n) if fmt == "cluener" else _jsonl_spans(obj, path, n, with_labels)
    spans = _check_spans(raw, text, path, n, repairs, "label" if fmt == "cluener" else "entities")
    words = split_words(text, {c for s, e, _ in spans for c in (s, e)})
    return Example(text=text, label=[list(s) for s in spans], path=path, line=n, extra={"words": words})


def _tokens_tags(obj: dict, path: str, n: int, repairs: list[str] | None, tag_key: str, scheme: str) -> Example:
    tokens, tags = obj.get("tokens"), obj.get(tag_key)
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise DataError(path, f"expected lists 'tokens' and '{tag_key}'", line=n)
    if len(tokens) != len(tags):
        raise DataError(path, f"{len(tokens)} tokens but {len(tags)} tags", line=n, field=tag_key)
    words, pos = [], 0
    for t in tokens:
        words.append((pos, pos + len(str(t))))
        pos += len(str(t)) + 1
    spans = tags_to_spans([str(t) for t in tags], scheme, lambda i: (path, n, str(tokens[i])), repairs)
    return Example(text=" ".join(map(str, tokens)), label=[[words[a][0], words[b - 1][1], t] for a, b, t in spans],
                   path=path, line=n, extra={"words": words})


def _jsonl_spans(obj: dict, path: str, n: int, with_labels: bool) -> list[tuple[Any, Any, Any]]:
    ents = obj.get("entities")
    if ents is None:
        if with_labels:
            raise DataError(path, "missing 'entities' (a list of {start, end, label}); use [] for none", line=n)
        return []
    if not isinstance(ents, list) or not all(isinstance(e, dict) for e in ents):
        raise DataError(path, "'entities' must be a list of objects {start, end, label}", line=n, field="entities")
    try:
        return [(e["start"], e["end"], e["label"]) for e in ents]
    except KeyError as err:
        raise DataError(path, f"an entity lacks key {err}", line=n, field="entities") from None


def _cluener_spans(obj: dict, text: str, path: str, n: int) -> list[tuple[Any, Any, Any]]:
    label = obj.get("label") or {}
    if not isinstance(label, dict):
        raise DataError(path, "'label' must map type → {surface: [[start, end_inclusive], ...]}", line=n)
    out = []
    for typ, mentions in label.items():
        for surface, positions in (mentions or {}).items():
            for pos in positions:
                if not (isinstance(pos, list) and len(pos) == 2 and all(isinstance(p, int) for p in pos)):
                    raise DataError(path, f"entity {surface!r}: position {pos!r} is not [start, end_inclusive]",
                                    line=n, field="label")
                s, e = pos[0], pos[1] + 1
                if 0 <= s < e <= len(text) and text[s:e] != surface:
                    raise DataError(path, f"entity {surface!r} ({typ}) at [{pos[0]}, {pos[1]}] reads "
                                    f"{text[s:e]!r} in the text (CLUENER ends are inclusive)", line=n, field="label")
                out.append((s, e, typ))
    return out


def _check_spans(spans, text: str, path: str, n: int, repairs: list[str] | None,
                 field: str = "entities") -> list[tuple[int, int, str]]:
    """Spans inside the text, non-empty, typed, not overlapping and not starting/ending in whitespace."""
    good: list[tuple[int, int, str]] = []

    def bad(msg: str) -> None:
        if repairs is None:
            raise DataError(path, msg + " (or set task.repair_tags: true to drop such spans)", line=n, field=field)
        repairs.append(f"{path}, line {n}: {msg}; span dropped")

    for s, e, typ in sorted(spans, key=lambda x: (x[0], -x[1]) if all(isinstance(v, int) for v in x[:2]) else (0, 0)):
        if not (isinstance(s, int) and isinstance(e, int) and isinstance(typ, str) and typ):
            bad(f"entity [{s}, {e}, {typ!r}] needs integer start/end and a non-empty label")
        elif not 0 <= s < e <= len(text):
            bad(f"entity [{s}, {e}) {typ} is outside the text (length {len(text)})")
        elif text[s:e] != text[s:e].strip():
            bad(f"entity [{s}, {e}) {typ} {text[s:e]!r} starts or ends with whitespace")
        elif good and s < good[-1][1]:
            p = good[-1]
            bad(f"entity [{s}, {e}) {typ} {text[s:e]!r} overlaps [{p[0]}, {p[1]}) {p[2]} {text[p[0]:p[1]]!r}; "
                "nested entities are not supported")
        else:
            good.append((s, e, typ))
    return good
