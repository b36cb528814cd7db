"""The two-tower scorer the Predictor runs: the run's sentence-transformers encoder applied to the history
and candidate texts of a batch, then the cosine of each (history, candidate) pair.

It wraps the encoder rather than re-implementing its pooling, so whatever modules the run's
``modules.json`` lists (mean pooling for a plain encoder; a base model's own pooling, dense or
normalisation layers) score exactly as in training and in ``graftkit recommend``.
"""
from __future__ import annotations

import torch
from transformers import AutoModel

from graftkit.tasks.common.bi_encoder import load_model


class TwoTowerScorer(torch.nn.Module):
    """``forward(...) -> (scores (n, 1),)``: texts are encoded once each; ``history_index`` and
    ``candidate_index`` say which encoded rows form each pair."""

    #: what a user loads with plain transformers (the run folder's root is the encoder): see the model card
    transformers_class = AutoModel

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    @classmethod
    def from_pretrained(cls, path: str) -> TwoTowerScorer:
        return cls(load_model(path, device="cpu"))

    def forward(self, input_ids, attention_mask, history_index, candidate_index, token_type_ids=None):
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        emb = torch.nn.functional.normalize(self.encoder(features)["sentence_embedding"], dim=-1)
        return ((emb[history_index] * emb[candidate_index]).sum(-1, keepdim=True),)
