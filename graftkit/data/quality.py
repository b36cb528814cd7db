"""Data-quality report over the splits of a run: the problems worth fixing before training.

Finds rows per split and class balance, exact and near-exact duplicates within a split and
across splits (leakage: a test row the model saw in training), identical texts with conflicting
labels, token lengths against ``data.max_length`` (the share that gets truncated), the rate of
unknown tokens, and empty or one-token texts. Every finding names file and line.

"Near-exact" means equal after Unicode NFKC, case folding, dropping punctuation and collapsing
whitespace ("Great movie!" and "great movie" are near-duplicates).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np

from graftkit.data.dataset import Example, Splits

#: how many example locations each finding lists (the counts are always complete)
SHOWN = 20
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The key near-duplicates share: NFKC, case-folded, without punctuation, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return _SPACE.sub(" ", text).strip()


def input_key(example) -> tuple[str, str | None]:
    """The key two rows with the same input share (``normalise`` of the text and of the text pair)."""
    return normalise(example.text), None if example.text_pair is None else normalise(example.text_pair)


def _input(e: Example) -> str:
    return e.text if e.text_pair is None else f"{e.text}\u241e{e.text_pair}"  # ␞ joins a pair unambiguously


def _where(e: Example) -> str:
    return f"{e.path}:{e.line}"


def _groups(examples: Iterable[tuple[str, Example]], key) -> dict[str, list[tuple[str, Example]]]:
    out: dict[str, list] = defaultdict(list)
    for split, e in examples:
        out[key(e)].append((split, e))
    return out


def duplicates(splits: dict[str, list[Example]]) -> dict[str, Any]:
    """Exact and near-exact duplicates within each split, and texts shared across splits."""
    tagged = [(name, e) for name, rows in splits.items() for e in rows]
    exact = _groups(tagged, _input)
    near = _groups(tagged, lambda e: normalise(_input(e)))
    within: dict[str, dict] = {}
    for name in splits:
        ex = [g for g in exact.values() if sum(s == name for s, _ in g) > 1]
        nr = [g for g in near.values() if sum(s == name for s, _ in g) > 1
              and len({_input(e) for s, e in g if s == name}) > 1]
        within[name] = {"exact": sum(sum(s == name for s, _ in g) - 1 for g in ex),
                        # near: redundant rows beyond the exact copies (distinct exact texts − 1 per group)
                        "near": sum(len({_input(e) for s, e in g if s == name}) - 1 for g in nr),
                        "examples": [[_where(e) for s, e in g if s == name] for g in (ex + nr)[:SHOWN]]}
    leakage = {}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = [g for g in near.values() if {s for s, _ in g} >= {a, b}]
            # each example names the pair's own rows (one in each of the two splits), not a third split's
            leakage[f"{a}/{b}"] = {"rows": sum(sum(s == b for s, _ in g) for g in shared),
                                   "examples": [[_where(e) for s, e in g if s in (a, b)] for g in shared[:SHOWN]]}
    return {"within": within, "leakage": leakage}


def conflicts(splits: dict[str, list[Example]], gold_key: Callable[[Example], Hashable]) -> dict[str, Any]:
    """Texts that occur (near-exactly) more than once with different labels (``gold_key``), in any split."""
    tagged = [(name, e) for name, rows in splits.items() for e in rows if e.label is not None]
    groups = [g for g in _groups(tagged, lambda e: normalise(_input(e))).values()
              if len({gold_key(e) for _, e in g}) > 1]
    return {"texts": len(groups), "rows": sum(len(g) for g in groups),
            "examples": [[{"where": _where(e), "label": e.label} for _, e in g] for g in groups[:SHOWN]]}


def balance(examples: Sequence[Example]) -> dict[str, Any]:
    """Label counts (classification labels, multi-label labels, NER entity types) or target statistics."""
    labels = [e.label for e in examples if e.label is not None]
    if not labels:
        return {}
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in labels) or \
            all(isinstance(x, (list, tuple)) and x and isinstance(x[0], (int, float)) for x in labels):
        arr = np.asarray(labels, dtype=float)
        return {"targets": {"mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()),
                            "max": float(arr.max())}}
    counts: Counter = Counter()
    for x in labels:
        if isinstance(x, list):  # NER: entity types
            counts.update(s[2] for s in x)
        elif isinstance(x, tuple):
            counts.update(x)
        else:
            counts[x] += 1
    total = sum(counts.values())
    most, least = max(counts.values()), min(counts.values())
    return {"counts": dict(counts.most_common()), "imbalance": round(most / max(least, 1), 2),
            "smallest_share": round(least / max(total, 1), 4)}


def token_stats(examples: Sequence[Example], tokenizer, max_length: int) -> dict[str, Any]:
    """Token-length percentiles (with special tokens), truncated share, [UNK] rate, empty / one-token texts."""
    if not examples:
        return {}
    a = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    enc = tokenizer(a, pairs if all(p is not None for p in pairs) else None, truncation=False,
                    add_special_tokens=True, verbose=False)["input_ids"]
    lengths = np.array([len(ids) for ids in enc])
    unk = tokenizer.unk_token_id
    special = set(tokenizer.all_special_ids) - {unk}  # [UNK] is "special" to transformers, but content here
    content = [[t for t in ids if t not in special] for ids in enc]
    n_tokens = sum(len(c) for c in content)
    n_unk = sum(t == unk for c in content for t in c) if unk is not None else 0
    short = [e for e, c in zip(examples, content) if len(c) <= 1]
    truncated = [e for e, n in zip(examples, lengths) if n > max_length]
    return {"percentiles": {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)} | {
                "max": int(lengths.max())},
            "max_length": max_length, "truncated": len(truncated),
            "truncated_share": round(len(truncated) / len(examples), 4),
            "truncated_examples": [_where(e) for e in truncated[:SHOWN]],
            "unk_rate": round(n_unk / max(n_tokens, 1), 5), "unk_tokens": int(n_unk),
            "short_texts": len(short), "short_examples": [_where(e) for e in short[:SHOWN]]}


def quality_report(splits: Splits, tokenizer, max_length: int,
                   gold_key: Callable[[Example], Hashable] | None = None) -> dict[str, Any]:
    """The whole report (JSON-serialisable) for the train / validation / test splits that exist.

    ``gold_key`` gives a hashable form of an example's one right answer; without it (generation: a prompt
    may have several right outputs) class balance and conflicting labels are left out.
    """
    fixed_labels = gold_key is not None
    parts = {n: rows for n, rows in (("train", splits.train), ("validation", splits.validation),
                                     ("test", splits.test)) if rows}
    return {"rows": {n: len(rows) for n, rows in parts.items()},
            "balance": {n: balance(rows) for n, rows in parts.items()} if fixed_labels else {},
            "duplicates": duplicates(parts),
            "conflicts": conflicts(parts, gold_key) if fixed_labels else {"texts": 0, "rows": 0, "examples": []},
            "tokens": {n: token_stats(rows, tokenizer, max_length) for n, rows in parts.items()}}


def warnings(report: dict[str, Any]) -> list[str]:
    """Short warnings for the problems the report found (empty when the data looks clean)."""
    out = []
    for name, d in report["duplicates"]["within"].items():
        if d["exact"] or d["near"]:
            out.append(f"{name}: {d['exact']} exact and {d['near']} near-exact duplicate rows "
                       f"(e.g. {', '.join(d['examples'][0])})")
    for pair, d in report["duplicates"]["leakage"].items():
        if d["rows"]:
            out.append(f"leakage {pair}: {d['rows']} rows of the second split also occur in the first "
                       f"(e.g. {', '.join(d['examples'][0])}); its scores overstate quality")
    c = report["conflicts"]
    if c["texts"]:
        first = c["examples"][0]
        out.append(f"{c['texts']} texts occur with conflicting labels (e.g. "
                   + ", ".join(f"{x['where']}={x['label']}" for x in first[:3]) + ")")
    for name, b in report["balance"].items():
        if b.get("imbalance", 0) >= 10:
            out.append(f"{name}: class imbalance {b['imbalance']}x (smallest class {b['smallest_share']:.1%}); "
                       "consider task.class_weights: balanced")
    for name, t in report["tokens"].items():
        if t and t["truncated_share"] >= 0.01:
            out.append(f"{name}: {t['truncated_share']:.1%} of texts exceed data.max_length={t['max_length']} "
                       f"tokens and are truncated (p95={t['percentiles']['p95']}, max={t['percentiles']['max']})")
        if t and t["unk_rate"] >= 0.01:
            out.append(f"{name}: {t['unk_rate']:.1%} of tokens are unknown to the tokenizer ([UNK]); "
                       "its vocabulary may not fit this language")
        if t and t["short_texts"]:
            out.append(f"{name}: {t['short_texts']} texts are empty or a single token "
                       f"(e.g. {', '.join(t['short_examples'][:3])})")
    return out
