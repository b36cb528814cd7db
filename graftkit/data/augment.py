"""Offline EDA-style augmentation of training examples (Wei & Zou, 2019), without downloads.

Operations: random swap, random deletion, random insertion and synonym replacement. Synonyms
are the nearest neighbours (cosine) of a word in the model's own input-embedding matrix,
restricted to whole-word vocabulary entries. Chinese text (mostly CJK characters) is edited
character by character. Only the training split is ever passed here; labels are copied.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace

import torch

from graftkit.config import AUGMENT_OP_NAMES, AugmentConfig
from graftkit.data.dataset import Example
from graftkit.registry import Registry

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"^[^\W\d_]{2,}$")


def is_chinese(text: str) -> bool:
    """True when most non-space characters are CJK ideographs."""
    chars = [c for c in text if not c.isspace()]
    return bool(chars) and sum(bool(_CJK.match(c)) for c in chars) / len(chars) > 0.5


def units(text: str) -> list[str]:
    """Words, or characters for Chinese."""
    return [c for c in text if not c.isspace()] if is_chinese(text) else text.split()


def join(parts: list[str], chinese: bool) -> str:
    return "".join(parts) if chinese else " ".join(parts)


class EmbeddingSynonyms:
    """Nearest whole-word neighbours in a model's input-embedding matrix.

    Args:
        tokenizer: the model's tokenizer (WordPiece, BPE or SentencePiece vocabularies).
        embeddings: the (vocab, dim) input-embedding weights.
        k: how many neighbours to keep per word.
    """

    def __init__(self, tokenizer, embeddings: torch.Tensor, k: int = 5):
        self.k = k
        vocab = tokenizer.get_vocab()
        wordpiece = any(t.startswith("##") for t in vocab)
        marker = "" if wordpiece else ("Ġ" if any(t.startswith("Ġ") for t in vocab) else "▁")
        special = set(getattr(tokenizer, "all_special_tokens", []))
        self.word_ids: dict[str, int] = {}
        for tok, i in vocab.items():
            if tok in special or i >= embeddings.shape[0]:
                continue
            if marker and not tok.startswith(marker):
                continue
            word = tok[len(marker):]
            if _WORD.match(word) or (len(word) == 1 and _CJK.match(word)):
                self.word_ids.setdefault(word, i)
        self.words = list(self.word_ids)
        ids = torch.tensor([self.word_ids[w] for w in self.words])
        self.matrix = torch.nn.functional.normalize(embeddings.detach().float()[ids], dim=-1)
        self.row = {w: n for n, w in enumerate(self.words)}
        self.cache: dict[str, list[str]] = {}

    def _key(self, word: str) -> str | None:
        for cand in (word, word.lower()):
            if cand in self.row:
                return cand
        return None

    def prepare(self, vocabulary: set[str]) -> None:
        """Compute neighbours for many words at once (one matrix product per chunk)."""
        keys = sorted({k for w in vocabulary if (k := self._key(w)) and k not in self.cache})
        for start in range(0, len(keys), 512):
            chunk = keys[start:start + 512]
            sims = self.matrix[[self.row[w] for w in chunk]] @ self.matrix.T
            top = sims.topk(min(self.k + 1, sims.shape[1]), dim=-1).indices
            for w, idx in zip(chunk, top.tolist()):
                self.cache[w] = [self.words[j] for j in idx if self.words[j] != w][:self.k]

    def of(self, word: str) -> list[str]:
        key = self._key(word)
        if key is None:
            return []
        if key not in self.cache:
            self.prepare({key})
        return self.cache[key]


#: augmentation op name -> function(rng, units, n_edits, rate, synonyms) -> units; ``augment.ops`` names them
AUGMENT_OPS = Registry("augmentation op")


@AUGMENT_OPS.register("synonym")
def _synonym(rng: random.Random, parts: list[str], n: int, rate: float, syn: EmbeddingSynonyms) -> list[str]:
    out = list(parts)
    positions = [i for i, p in enumerate(out) if syn.of(p)]
    for i in rng.sample(positions, min(n, len(positions))):
        out[i] = rng.choice(syn.of(out[i]))
    return out


@AUGMENT_OPS.register("insert")
def _insert(rng: random.Random, parts: list[str], n: int, rate: float, syn: EmbeddingSynonyms) -> list[str]:
    out = list(parts)
    sources = [p for p in parts if syn.of(p)]
    for _ in range(n if sources else 0):
        out.insert(rng.randint(0, len(out)), rng.choice(syn.of(rng.choice(sources))))
    return out


@AUGMENT_OPS.register("swap")
def _swap(rng: random.Random, parts: list[str], n: int, rate: float, syn=None) -> list[str]:
    out = list(parts)
    for _ in range(n if len(out) > 1 else 0):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


@AUGMENT_OPS.register("delete")
def _delete(rng: random.Random, parts: list[str], n: int, rate: float, syn=None) -> list[str]:
    kept = [p for p in parts if rng.random() > rate]
    return kept or [rng.choice(parts)]


#: ops that pick words from the model's embedding neighbours
NEEDS_SYNONYMS = {"synonym", "insert"}
if set(AUGMENT_OPS.names()) != set(AUGMENT_OP_NAMES):  # the config's Literal and this table name the same ops
    raise ImportError(f"augment ops {AUGMENT_OPS.names()} differ from config's {AUGMENT_OP_NAMES}")


def variant(text: str, op: str, rng: random.Random, rate: float, syn: EmbeddingSynonyms | None) -> str:
    """One augmented version of ``text`` made with ``op`` (a name in AUGMENT_OPS)."""
    parts = units(text)
    if not parts:
        return text
    edit = AUGMENT_OPS.get(op)
    if op in NEEDS_SYNONYMS and syn is None:
        return text
    return join(edit(rng, parts, max(1, int(rate * len(parts))), rate, syn), is_chinese(text))


def augment_examples(train: list[Example], cfg: AugmentConfig, tokenizer=None,
                     embeddings: torch.Tensor | None = None) -> tuple[list[Example], dict]:
    """Training examples plus ``cfg.copies`` variants each (duplicates of the original skipped).

    Args:
        train: the training split only; labels are copied unchanged.
        cfg: operations, edit rate, neighbours and seed.
        tokenizer, embeddings: the model's vocabulary and input embeddings (for synonyms/inserts).

    Returns:
        (original + generated examples, counts for the run folder).
    """
    syn = None
    if NEEDS_SYNONYMS & set(cfg.ops):
        if tokenizer is None or embeddings is None:
            raise ValueError("synonym/insert augmentation needs the tokenizer and embedding matrix")
        syn = EmbeddingSynonyms(tokenizer, embeddings, cfg.neighbours)
        syn.prepare({u for e in train for u in units(e.text)})
    rng = random.Random(cfg.seed)
    generated: list[Example] = []
    by_op: Counter = Counter()
    for e in train:
        for _ in range(cfg.copies):
            op = rng.choice(cfg.ops)
            text = variant(e.text, op, rng, cfg.rate, syn)
            if text != e.text:
                generated.append(replace(e, text=text, extra={**e.extra, "augmented": op}))
                by_op[op] += 1
    counts = {"original": len(train), "generated": len(generated), "by_op": dict(sorted(by_op.items())),
              "copies": cfg.copies, "rate": cfg.rate, "seed": cfg.seed}
    return train + generated, counts
