"""Weight decay applies to the same parameters as transformers' Trainer rule, through the public helper."""
from transformers import BertConfig, BertForSequenceClassification, Trainer

from graftkit.train.optim import decay_parameter_names


def test_decay_excludes_biases_and_norms_like_the_trainer():
    cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=99)
    model = BertForSequenceClassification(cfg)
    names = decay_parameter_names(model)
    assert names and not any(n.endswith(".bias") or "LayerNorm" in n for n in names)
    assert "classifier.weight" in names
    assert names == set(Trainer.get_decay_parameter_names(Trainer.__new__(Trainer), model))
