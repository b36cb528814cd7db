"""The seq2seq model: a native encoder–decoder, or an encoder checkpoint warm-started as one.

``Seq2SeqModel.from_pretrained`` is what the one loading path calls (``task.model_class``):

- a checkpoint whose config is an encoder–decoder (T5, BART, mT5, a saved run) loads through
  ``AutoModelForSeq2SeqLM``, which maps ``encoder-decoder`` configs to ``EncoderDecoderModel``;
- an encoder-only checkpoint (BERT, MiniLM, RoBERTa) is warm-started with
  ``EncoderDecoderModel.from_encoder_decoder_pretrained(enc, enc)`` (Rothe et al. 2020, BERT2BERT):
  both halves start from the encoder's weights, the decoder gains causal masking and freshly
  initialised cross-attention.
"""
from __future__ import annotations

from transformers import AutoConfig, AutoModelForSeq2SeqLM, EncoderDecoderModel

from graftkit.modeling.load import quiet_missing_head


def is_warm_start(config) -> bool:
    """An encoder-only config (no decoder of its own): it needs the warm start."""
    return not getattr(config, "is_encoder_decoder", False) and config.model_type != "encoder-decoder"


class Seq2SeqModel:
    """Loader with ``from_pretrained``; the model card names ``transformers_class``."""

    transformers_class = AutoModelForSeq2SeqLM

    @classmethod
    def from_pretrained(cls, path: str, config=None, revision: str | None = None, **kwargs):
        config = config or AutoConfig.from_pretrained(path, revision=revision)
        if not is_warm_start(config):
            return AutoModelForSeq2SeqLM.from_pretrained(path, config=config, revision=revision, **kwargs)
        with quiet_missing_head():  # the cross-attention weights are new by design
            return EncoderDecoderModel.from_encoder_decoder_pretrained(
                path, path, encoder_revision=revision, decoder_revision=revision)
