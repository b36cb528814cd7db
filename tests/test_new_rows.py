"""model.extend_vocab.learning_rate_scale (graftkit/train/new_rows.py): added rows take longer steps."""
from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoTokenizer, BertForMaskedLM

from graftkit.config import ExtendVocabConfig
from graftkit.modeling.vocab import extend_vocab
from graftkit.train.new_rows import NewRowsLearningRate, added_token_ids, new_rows_callback

TEXTS = ["彭军认为很好", "彭军说不好", "军人很好"] * 2


def _extended(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model = BertForMaskedLM.from_pretrained(tiny_model_dir)
    extend_vocab(model, tok, TEXTS, ExtendVocabConfig(source="auto", min_count=2), log=lambda m: None)
    return tok, model


def _one_step(model, tok, callback=None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    if callback is not None:
        callback.on_train_begin(None, None, None, model=model, optimizer=optimizer)
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    model.train()
    torch.manual_seed(1)  # the same dropout in both models
    model(**batch, labels=batch["input_ids"]).loss.backward()
    optimizer.step()
    return model.get_input_embeddings().weight.detach()


def test_added_rows_move_scale_times_as_far_and_old_rows_as_usual(tiny_model_dir):
    tok, model = _extended(tiny_model_dir)
    ids = added_token_ids(tok)
    original = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    assert len(ids) >= 2 and min(ids) >= original  # the extension's tokens, none of the special ones
    start = model.get_input_embeddings().weight.detach().clone()
    twin = copy.deepcopy(model)
    plain = _one_step(model, tok)
    scaled = _one_step(twin, tok, NewRowsLearningRate(ids, 8.0, log=lambda m: None))
    old = [i for i in range(start.shape[0]) if i not in ids]
    assert torch.allclose(scaled[old], plain[old], atol=1e-7)
    assert torch.allclose(scaled[ids] - start[ids], 8.0 * (plain[ids] - start[ids]), atol=1e-6)
    assert (plain[ids] - start[ids]).abs().max() > 1e-4  # the step did move them
    # tied MLM decoder: the same matrix, so its rows moved with the input rows
    assert twin.get_output_embeddings().weight is twin.get_input_embeddings().weight


def test_no_callback_when_the_scale_is_one_or_nothing_was_added(tiny_model_dir):
    tok, _ = _extended(tiny_model_dir)
    assert new_rows_callback(ExtendVocabConfig(source="auto"), tok) == []
    fresh = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert new_rows_callback(ExtendVocabConfig(source="auto", learning_rate_scale=10), fresh) == []
    assert len(new_rows_callback(ExtendVocabConfig(source="auto", learning_rate_scale=10), tok)) == 1


def test_scale_below_one_is_a_config_error():
    with pytest.raises(ValueError):
        ExtendVocabConfig(source="auto", learning_rate_scale=0.5)


def test_training_run_scales_only_the_added_rows(tmp_path, tiny_model_dir):
    """Two one-step runs from the same seed: the old rows end equal, the added ones do not."""
    from safetensors.torch import load_file

    from conftest import run_config, write_csv
    from graftkit.train.trainer import train

    rows = [["彭军认为很好", "pos"], ["彭军说不好", "neg"], ["军人很好", "pos"], ["彭说不行", "neg"]] * 4
    data = write_csv(tmp_path / "train.csv", rows)
    weights, lines = {}, []
    for scale in (1.0, 10.0):
        cfg = run_config(tmp_path, tiny_model_dir, data, name=f"s{scale:g}",
                         model={"name_or_path": tiny_model_dir,
                                "extend_vocab": {"source": "auto", "learning_rate_scale": scale}},
                         train={"max_steps": 1, "warmup": 0, "scheduler": "constant"})
        run = train(cfg, log=lines.append)
        state = load_file(run.path / "model.safetensors")
        weights[scale] = next(v for k, v in state.items() if k.endswith("word_embeddings.weight"))
    assert any("added token rows learn 10x as fast" in m for m in lines)
    ids = added_token_ids(AutoTokenizer.from_pretrained(tmp_path / "runs" / "s10"))
    old = [i for i in range(weights[1.0].shape[0]) if i not in ids]
    assert torch.allclose(weights[10.0][old], weights[1.0][old], atol=1e-6)
    assert not torch.allclose(weights[10.0][ids], weights[1.0][ids], atol=1e-4)
