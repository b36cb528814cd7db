"""Offline augmentation: seeded, embedding-neighbour synonyms, Chinese characters, training data only."""
from __future__ import annotations

import json
import random

import torch

from conftest import run_config, write_csv
from graftkit.config import AugmentConfig
from graftkit.data.augment import EmbeddingSynonyms, augment_examples, is_chinese, variant
from graftkit.data.dataset import Example
from graftkit.modeling.run_folder import RunFolder
from graftkit.train.trainer import build_trainer, prepare

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]]


class _Tok:
    """A WordPiece-like vocabulary for a hand-made embedding matrix."""

    all_special_tokens = ["[PAD]"]

    def __init__(self, words):
        self.vocab = {w: i for i, w in enumerate(words)}

    def get_vocab(self):
        return dict(self.vocab)


def test_synonyms_are_embedding_neighbours():
    words = ["[PAD]", "good", "great", "bad", "awful", "##ly", "好", "佳"]
    emb = torch.tensor([[0, 0, 0], [1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0, 0.9, 0.1],
                        [0, 0, 1], [0.5, 0.5, 0.7], [0.5, 0.5, 0.69]], dtype=torch.float)
    syn = EmbeddingSynonyms(_Tok(words), emb, k=1)
    assert syn.of("good") == ["great"] and syn.of("Bad") == ["awful"]
    assert syn.of("ly") == [] and syn.of("unknownword") == []  # subword pieces and OOV words have none
    assert syn.of("好") == ["佳"]
    rng = random.Random(0)
    assert variant("good film", "synonym", rng, 0.5, syn) == "great film"


def test_seeded_and_chinese_character_level(tiny_model_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    emb = AutoModel.from_pretrained(tiny_model_dir).get_input_embeddings().weight
    train = [Example(text=t, label=lab) for t, lab in ROWS] + [Example(text="这部电影非常好看", label="pos")]
    cfg = AugmentConfig(copies=2, rate=0.3, seed=7)
    a, counts = augment_examples(train, cfg, tok, emb)
    b, _ = augment_examples(train, cfg, tok, emb)
    assert [e.text for e in a] == [e.text for e in b]  # same seed, same output
    c, _ = augment_examples(train, cfg.model_copy(update={"seed": 8}), tok, emb)
    assert [e.text for e in a] != [e.text for e in c]
    assert a[:len(train)] == train and counts["generated"] == len(a) - len(train) > 0
    assert sum(counts["by_op"].values()) == counts["generated"]
    for e in a[len(train):]:
        src = next(o for o in train if o.label == e.label)
        assert e.label == src.label and e.extra["augmented"] in cfg.ops
    chinese = [e for e in a[len(train):] if is_chinese(e.text)]
    assert chinese and all(" " not in e.text for e in chinese)  # character-level edits, no spaces added
    swapped = variant("这部电影非常好看", "swap", random.Random(1), 0.3, None)
    assert sorted(swapped) == sorted("这部电影非常好看") and swapped != "这部电影非常好看"


def test_only_training_split_is_augmented(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    val_file = write_csv(tmp_path / "val.csv", ROWS)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, augment={"copies": 2},
                     data={"validation": str(val_file), "test": str(val_file)})
    task, splits = prepare(cfg)
    val_before = [(e.text, e.label) for e in splits.validation]
    test_before = [(e.text, e.label) for e in splits.test]
    run = RunFolder(cfg.run_dir)
    run.path.mkdir(parents=True)
    trainer, _ = build_trainer(cfg, task, splits, run, log=lambda m: None)
    counts = json.loads((run.path / "training_setup.json").read_text())["augment"]
    assert counts["original"] == 16 and counts["generated"] > 0
    assert len(trainer.train_dataset) == 16 + counts["generated"]
    assert len(trainer.eval_dataset) == len(ROWS)
    assert [(e.text, e.label) for e in splits.validation] == val_before
    assert [(e.text, e.label) for e in splits.test] == test_before
