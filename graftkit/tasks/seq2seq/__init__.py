"""Sequence-to-sequence fine-tuning: T5 / BART / mT5, or any encoder warm-started as BERT2BERT."""
from __future__ import annotations

from graftkit.tasks.common.generation.capabilities import GenerativeCard
from graftkit.tasks.common.generation.task import GenerativeTask
from graftkit.tasks.seq2seq.capabilities import Seq2SeqGenerates, Seq2SeqTraining
from graftkit.tasks.seq2seq.config import Seq2SeqConfig
from graftkit.tasks.seq2seq.head import Seq2SeqModel


class Seq2SeqTask(GenerativeTask):
    """Source text → target text with an encoder–decoder."""

    name = "seq2seq"
    config_class = Seq2SeqConfig
    model_class = Seq2SeqModel
    capabilities = (Seq2SeqTraining, Seq2SeqGenerates, GenerativeCard)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        #: decoder_start / eos / pad ids, set when the model is prepared for training
        self.ids: dict[str, int] | None = None
