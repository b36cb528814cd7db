"""model.keep_layers (graftkit/modeling/shrink.py): a backbone cut to chosen layers, DistilBERT-style."""
from __future__ import annotations

import pytest
import torch
from transformers import (AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification, GPT2Config,
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM)

from graftkit.errors import ConfigError
from graftkit.modeling.shrink import keep_layers


def _bert(layers=4):
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers,
                                                    num_attention_heads=2, intermediate_size=32)).eval()


def test_kept_layers_are_copies_of_the_chosen_ones(tmp_path):
    model = _bert()
    before = {i: {k: v.clone() for k, v in model.bert.encoder.layer[i].state_dict().items()} for i in range(4)}
    emb = model.bert.embeddings.word_embeddings.weight.clone()
    keep_layers(model, [0, 3])
    assert model.config.num_hidden_layers == 2 and len(model.bert.encoder.layer) == 2
    for new, old in ((0, 0), (1, 3)):
        for k, v in model.bert.encoder.layer[new].state_dict().items():
            assert torch.equal(v, before[old][k]), (new, k)
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, emb)
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    model.save_pretrained(tmp_path / "cut")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "cut").eval()
    assert reloaded.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, logits, atol=1e-6)


def test_cut_model_computes_what_the_kept_layers_compute():
    model = _bert()
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():  # by hand: embeddings, then layers 1 and 2 of the full model
        h = model.bert.embeddings(input_ids=ids)
        for i in (1, 2):
            h = model.bert.encoder.layer[i](h)[0] if isinstance(model.bert.encoder.layer[i](h), tuple) \
                else model.bert.encoder.layer[i](h)
        keep_layers(model, [1, 2])
        assert torch.allclose(model.bert(input_ids=ids).last_hidden_state, h, atol=1e-5)


@pytest.mark.parametrize("keep, match", [([0, 4], "out of range"), ([-1], "out of range"), ([], "at least one"),
                                         ([2, 1], "increasing"), ([1, 1], "increasing")])
def test_bad_keep_layers_are_errors(keep, match):
    with pytest.raises(ConfigError, match=match):
        keep_layers(_bert(), keep)


def test_decoders_renumber_their_cache_layers():
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=4, n_head=2))
    keep_layers(gpt2, [1, 3])
    assert gpt2.config.n_layer == 2 and len(gpt2.transformer.h) == 2
    assert [b.attn.layer_idx for b in gpt2.transformer.h] == [0, 1]
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                                         num_attention_heads=2, num_key_value_heads=2))
    keep_layers(llama, [0, 2, 3])
    assert llama.config.num_hidden_layers == 3 and [la.self_attn.layer_idx for la in llama.model.layers] == [0, 1, 2]
    out = llama.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 6)
