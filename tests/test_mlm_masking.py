"""Whole-word masking and text reading of the mlm task (graftkit/tasks/mlm/preprocess.py, head.py)."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from graftkit.errors import DataError
from graftkit.tasks.mlm.head import WholeWordMaskCollator
from graftkit.data.dataset import read_documents
from graftkit.tasks.mlm.preprocess import encode_texts, fixed_mask


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _words_of(tok, text):
    """Token groups that share a word id (special tokens left out)."""
    cols = encode_texts([text], tok, 64, whole_word=True)
    groups: dict[int, list[int]] = {}
    for pos, w in enumerate(cols["word_ids"][0]):
        if w >= 0:
            groups.setdefault(w, []).append(pos)
    return cols, groups


def test_word_ids_follow_spaces_and_jieba(tok):
    _, groups = _words_of(tok, "pharmacokinetics matters")
    pieces = tok.tokenize("pharmacokinetics")
    assert len(pieces) > 1 and [len(g) for g in groups.values()] == [len(pieces), len(tok.tokenize("matters"))]
    _, groups = _words_of(tok, "国内银行现在")  # jieba: 国内 / 银行 / 现在, one token per character
    assert [len(g) for g in groups.values()] == [2, 2, 2]


def test_collator_masks_whole_words_only(tok):
    texts = ["pharmacokinetics and pharmacodynamics matter a great deal", "国内银行现在走的是台湾的发卡模式"] * 8
    cols = encode_texts(texts, tok, 64, whole_word=True)
    feats = [{k: cols[k][i] for k in cols} for i in range(len(texts))]
    collate = WholeWordMaskCollator(tok, probability=0.4)
    torch.manual_seed(0)
    hits = 0
    for _ in range(5):
        batch = collate(feats)
        for row, words in enumerate(cols["word_ids"]):
            hidden = batch["labels"][row] != -100
            for w in set(words) - {-1}:
                member = torch.tensor([x == w for x in words] + [False] * (hidden.shape[0] - len(words)))
                states = hidden[member]
                assert states.all() or not states.any()  # a word is hidden entirely or not at all
                hits += int(states.all())
            assert not hidden[torch.tensor([x == -1 for x in words] + [True] * (hidden.shape[0] - len(words)))].any()
            assert torch.equal(batch["labels"][row][hidden], torch.tensor(cols["input_ids"][row])[hidden[:len(words)]])
    assert hits > 0
    mask_share = (batch["input_ids"] == tok.mask_token_id).sum() / (batch["labels"] != -100).sum()
    assert 0.5 < mask_share < 1.0  # ~80% [MASK], the rest random or unchanged


def test_without_whole_word_masking_pieces_are_masked_alone(tok):
    cols = encode_texts(["pharmacokinetics"] * 64, tok, 32, whole_word=False)
    feats = [{k: cols[k][i] for k in cols} for i in range(64)]
    torch.manual_seed(0)
    hidden = WholeWordMaskCollator(tok, probability=0.5)(feats)["labels"] != -100
    inner = hidden[:, 1:-1]
    assert (inner.any(1) & ~inner.all(1)).any()  # some words partly masked


def test_fixed_mask_is_reproducible_and_never_empty(tok):
    cols = encode_texts(["short text", "国内银行现在"], tok, 32, whole_word=True)
    for text, words in zip(["short text", "国内银行现在"], cols["word_ids"]):
        first = fixed_mask(text, words, 0.01)
        assert first == fixed_mask(text, words, 0.01) and any(first)


def test_documents_are_non_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first doc\n\n  \nsecond doc\n", encoding="utf-8")
    docs = read_documents(path)
    assert [(d.text, d.line) for d in docs] == [("first doc", 1), ("second doc", 4)]


def test_empty_or_unreadable_text_file_is_an_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt.*holds no text"):
        read_documents(empty)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("ok\n".encode() + b"\xff\xfe\n")
    with pytest.raises(DataError, match="bad.txt, line 2"):
        read_documents(bad)
    with pytest.raises(DataError, match="not found"):
        read_documents(tmp_path / "missing.txt")
