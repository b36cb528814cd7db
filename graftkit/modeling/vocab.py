"""Vocabulary extension: teach a pretrained tokenizer the characters and words of new text.

``model.extend_vocab`` takes one of three forms:

* ``off`` (default): the tokenizer is used as shipped;
* ``auto``: every character of the training text that the tokenizer maps to ``[UNK]``, and
  every word it splits into ``split_pieces`` or more pieces, seen at least ``min_count`` times,
  becomes a token of its own (at most ``max_tokens``, most frequent first);
* a path: a UTF-8 file with one token per line.

How the new embedding rows start (the input embedding and, for MLM/causal heads, the output
embedding, tied or not):

* a token the old tokenizer split into known pieces (a word) starts at the mean of those pieces'
  rows (input and output embedding alike);
* any other token (a character the old tokenizer mapped to ``[UNK]``) keeps transformers'
  ``resize_token_embeddings(mean_resizing=True)`` row: a draw from a normal distribution with
  the old embeddings' mean and covariance.

Old rows are never touched. The added tokens live in the tokenizer saved into the run folder,
so every later command (evaluate, predict, serve, export, ensemble, continued training) that
loads the folder's tokenizer splits text the same way.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from tokenizers import AddedToken

from graftkit.config import ExtendVocabConfig
from graftkit.data.words import has_cjk, word_spans
from graftkit.errors import ConfigError, DataError

#: a training text whose [UNK] share is above this gets a warning naming the switch that fixes it
UNK_WARN_RATE = 0.05


@dataclass
class VocabReport:
    """What an extension did, for the training log, training_setup.json and the model card."""

    added: list[str] = field(default_factory=list)
    unk_before: float = 0.0
    unk_after: float = 0.0
    from_pieces: int = 0  # how many new rows started at the mean of their old pieces

    def as_dict(self) -> dict:
        return {"tokens_added": len(self.added), "unk_rate_before": round(self.unk_before, 4),
                "unk_rate_after": round(self.unk_after, 4), "rows_from_pieces": self.from_pieces,
                "examples": self.added[:20]}


def _normalize(tokenizer, text: str) -> str:
    norm = getattr(tokenizer.backend_tokenizer, "normalizer", None) if tokenizer.is_fast else None
    return norm.normalize_str(text).strip() if norm is not None else text


def _unk_spans(tokenizer, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Per text, the character spans that the tokenizer turns into its unknown token (one batched call)."""
    unk = tokenizer.unk_token_id
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    return [[(s, e) for i, (s, e) in zip(ids, offsets) if i == unk]
            for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"])]


def unk_rate(tokenizer, texts: Iterable[str]) -> float:
    """Share of the non-space characters of ``texts`` that the tokenizer maps to its unknown token."""
    texts = list(texts)
    if tokenizer.unk_token_id is None or not texts:  # byte-level tokenizers (GPT-2, Llama 3) know every byte
        return 0.0
    total = sum(not c.isspace() for text in texts for c in text)
    unknown = sum(not c.isspace() for text, spans in zip(texts, _unk_spans(tokenizer, texts))
                  for s, e in spans for c in text[s:e])
    return unknown / total if total else 0.0


def _is_unknown(tokenizer, pieces: list[str]) -> list[bool]:
    ids = tokenizer(pieces, add_special_tokens=False)["input_ids"] if pieces else []
    return [tokenizer.unk_token_id in x for x in ids]


def _unknown_chars(tokenizer, texts: list[str]) -> Counter:
    """Count of each (normalised) character that the tokenizer cannot represent."""
    # an [UNK] word may hold known characters next to the unknown one: test each character alone
    seen: Counter = Counter(c for text, spans in zip(texts, _unk_spans(tokenizer, texts))
                            for s, e in spans for c in text[s:e] if not c.isspace())
    chars = list(seen)
    counts: Counter = Counter()
    for c, unknown in zip(chars, _is_unknown(tokenizer, chars)):
        if unknown:
            counts[_normalize(tokenizer, c) or c] += seen[c]
    return counts


def _split_words(tokenizer, texts: list[str], min_pieces: int) -> Counter:
    """Count of each word the tokenizer splits into ``min_pieces`` or more known pieces."""
    counts: Counter = Counter(text[s:e] for text in texts for s, e in word_spans(text) if e - s > 1)
    found = list(counts)
    ids = tokenizer(found, add_special_tokens=False)["input_ids"] if found else []
    out: Counter = Counter()
    for word, pieces in zip(found, ids):
        if len(pieces) >= min_pieces and tokenizer.unk_token_id not in pieces:
            out[word if has_cjk(word) else _normalize(tokenizer, word)] += counts[word]
    return out


def auto_tokens(tokenizer, texts: list[str], settings: ExtendVocabConfig) -> list[str]:
    """The tokens ``extend_vocab: auto`` adds for ``texts``: unknown characters first, then split words."""
    if tokenizer.unk_token_id is None:
        return []
    chars = _unknown_chars(tokenizer, texts)
    words = _split_words(tokenizer, texts, settings.split_pieces) if settings.words else Counter()
    ranked = [t for t, n in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])) if n >= settings.min_count]
    ranked += [t for t, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if n >= settings.min_count]
    return ranked[: settings.max_tokens]


def read_token_file(path: str | Path) -> list[str]:
    """Tokens from a UTF-8 file, one per line (blank lines skipped, duplicates kept once)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read the token file of model.extend_vocab: {err}") from None
    tokens = list(dict.fromkeys(t.strip() for t in lines if t.strip()))
    if not tokens:
        raise DataError(path, "the token file of model.extend_vocab holds no tokens (one token per line)")
    return tokens


def _added_token(tokenizer, token: str) -> AddedToken:
    """How a new token is matched: CJK tokens on the raw text (BERT's normaliser puts spaces between
    CJK characters, so a normalised CJK word could never match), words only as whole words."""
    if has_cjk(token):
        return AddedToken(token, single_word=False, normalized=False)
    return AddedToken(token, single_word=len(token) > 1, normalized=True)


def _resizable_embeddings(model) -> torch.nn.Embedding:
    try:
        emb = model.get_input_embeddings()
    except (NotImplementedError, AttributeError):
        emb = None
    if not isinstance(emb, torch.nn.Embedding):
        raise ConfigError(f"model.extend_vocab: {type(model).__name__} has no resizable input embedding "
                          "(get_input_embeddings() returns no nn.Embedding); set model.extend_vocab: off")
    return emb


def embedding_matrices(model) -> list[torch.nn.Parameter]:
    """The input embedding and, if untied, the output embedding: the matrices that hold a token's rows."""
    matrices = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None and out.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(out.weight)
    return matrices


def _init_from_pieces(model, rows: dict[int, list[int]]) -> None:
    """New row := mean of the old pieces' rows, in the input and (untied or tied) output embedding."""
    with torch.no_grad():
        for weight in embedding_matrices(model):
            for new, pieces in rows.items():
                weight[new] = weight[pieces].mean(0)


def add_tokens(model, tokenizer, tokens: list[str]) -> tuple[list[str], int]:
    """Add ``tokens`` to ``tokenizer`` and grow ``model``'s embeddings.

    Returns:
        The tokens that were new, and how many of their rows started at the mean of old pieces.

    Raises:
        ConfigError: the model has no resizable input embedding.
    """
    _resizable_embeddings(model)
    vocab = tokenizer.get_vocab()
    fresh = [t for t in dict.fromkeys(tokens) if t not in vocab]
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in fresh}  # with the old vocabulary
    if not fresh:
        return [], 0
    tokenizer.add_tokens([_added_token(tokenizer, t) for t in fresh])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    unk = tokenizer.unk_token_id
    rows = {tokenizer.convert_tokens_to_ids(t): ids for t, ids in pieces.items()
            if len(ids) > 1 and unk not in ids}
    _init_from_pieces(model, rows)
    return fresh, len(rows)


def extend_vocab(model, tokenizer, texts: list[str], settings: ExtendVocabConfig,
                 log: Callable[[str], None] = print) -> VocabReport:
    """Apply ``model.extend_vocab`` to a freshly loaded (tokenizer, model) pair, in place.

    Always measures the training text's [UNK] rate; warns above ``UNK_WARN_RATE`` when the
    extension is off or left characters unknown.
    """
    report = VocabReport(unk_before=unk_rate(tokenizer, texts))
    if settings.source != "off":
        tokens = auto_tokens(tokenizer, texts, settings) if settings.source == "auto" \
            else read_token_file(settings.source)
        report.added, report.from_pieces = add_tokens(model, tokenizer, tokens)
        report.unk_after = unk_rate(tokenizer, texts)
        log(f"extend_vocab ({settings.source}): added {len(report.added)} tokens "
            f"({report.from_pieces} initialised from their old pieces); [UNK] rate of the training text "
            f"{100 * report.unk_before:.1f}% -> {100 * report.unk_after:.1f}%")
    else:
        report.unk_after = report.unk_before
        log(f"[UNK] rate of the training text: {100 * report.unk_before:.1f}%")
    if report.unk_after > UNK_WARN_RATE:
        fix = "set model.extend_vocab: auto (or a token file)" if settings.source == "off" \
            else "lower model.extend_vocab.min_count or choose a checkpoint made for this language"
        log(f"WARNING: {100 * report.unk_after:.1f}% of the training text's characters are [UNK] to this "
            f"tokenizer (> {100 * UNK_WARN_RATE:.0f}%); the model cannot learn from them: {fix}")
    return report


def check_rows_train(report: VocabReport, peft: bool, frozen_embeddings: bool) -> None:
    """Refuse a run whose new embedding rows could never leave their initial values.

    Raises:
        ConfigError: tokens were added while PEFT or ``train.freeze.embeddings`` keeps the embeddings fixed.
    """
    if not report.added:
        return
    what = "peft keeps the embedding matrix frozen" if peft else "train.freeze.embeddings is set"
    if peft or frozen_embeddings:
        raise ConfigError(f"model.extend_vocab added {len(report.added)} tokens but {what}, so their rows would "
                          "stay at their initial values; train them first (a full fine-tune, or a pretrain: "
                          "stage whose folder this run then starts from), or set model.extend_vocab: off")


def training_texts(examples) -> list[str]:
    """The texts (and second texts of pairs) of training examples: what extension and [UNK] rates read."""
    return [t for e in examples for t in (e.text, e.text_pair) if t]
