"""NER's training, decoding, tagging, ensemble and card capabilities."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification

from graftkit.data.dataset import Example
from graftkit.errors import DataError
from graftkit.tasks.capabilities import (
    DecodesLogits,
    GoldLabels,
    TagsEntities,
    TrainsWithTrainer,
    Votes,
)
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.ner import metrics, postprocess, preprocess
from graftkit.tasks.ner.readers import log
from graftkit.tasks.predictions import EntitiesPrediction


class NerTraining(TrainsWithTrainer):
    """Word-aligned tags in windows of ``data.max_length`` pieces (transformers' ``run_ner.py`` alignment)."""

    def model_kwargs(self) -> dict:
        t = self.task
        return {"num_labels": len(t.labels), "id2label": dict(enumerate(t.labels)), "label2id": t.label2id,
                "use_crf": t.crf, "tag_scheme": t.scheme}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Training features. ``fit`` read the label set from these examples, so a type outside it means
        the label state came from elsewhere: refused, since its entities would silently be learnt as O."""
        unseen = self.task.unseen(examples)
        if unseen:
            e, typ = unseen[0]
            raise DataError(e.path, f"entity type {typ!r} is not in the label set ({', '.join(self.task.types)}); "
                            "the training data must show every type the model learns", line=e.line)
        return self._dataset(examples, [e.label for e in examples], tokenizer, max_length)

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Validation features during training.

        The label set comes from the training split only (the model can neither learn nor predict a
        type it never saw, and the test split must not shape the model). Entities of a type missing
        from it are tagged O here, so that the validation loss and the checkpoint-selection metric stay
        defined; ``check`` has named each such type with its file and line, and the final evaluation
        (evaluate/evaluator.py) scores the original spans and counts these entities as missed.
        """
        labels, dropped = preprocess.drop_unseen_types([e.label for e in examples], set(self.task.types))
        if dropped:
            log.warning("validation features during training: %s tagged O (types absent from the training "
                        "data; the final evaluation counts them as missed)",
                        ", ".join(f"{n} {t!r} entities" for t, n in sorted(dropped.items())))
        return self._dataset(examples, labels, tokenizer, max_length)

    def _dataset(self, examples: list[Example], labels: list, tokenizer, max_length: int):
        import datasets

        t = self.task
        cols = preprocess.build_features([t.input_of(e) for e in examples], labels, tokenizer, max_length,
                                         t.task_cfg.window_overlap, t.all_pieces, t.scheme, t.label2id)
        return datasets.Dataset.from_dict(cols)

    def collator(self, tokenizer):
        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        t = self.task
        preds, gold = eval_pred.predictions, eval_pred.label_ids
        emissions, tags = (preds[0], preds[1]) if isinstance(preds, tuple) else (preds, None)
        masks = [row != -100 for row in gold]
        if tags is None:
            paths = t.decoder([emissions[i][m] for i, m in enumerate(masks)])
        else:
            paths = [tags[i][m].tolist() for i, m in enumerate(masks)]
        gold_tags = [[t.labels[x] for x in gold[i][m]] for i, m in enumerate(masks)]
        pred_tags = [[t.labels[x] for x in p] for p in paths]
        return metrics.scores(gold_tags, pred_tags, t.scheme)


class NerDecoding(DecodesLogits):
    """Words → windows of pieces → stitched unit scores → constrained Viterbi → entity spans."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        t = self.task
        items = [preprocess.as_words(x) for x in inputs]
        word_lists = [[text[s:e] for s, e in w] for text, w in items]
        enc, windows = preprocess.tokenize_windows(word_lists, tokenizer, max_length, t.task_cfg.window_overlap,
                                                   t.all_pieces)
        keep = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        features = tokenizer.pad(keep, padding=True, return_tensors="np")
        return dict(features), (items, windows)

    def decode(self, logits: np.ndarray, context: Any) -> list[EntitiesPrediction]:
        t = self.task
        items, windows = context
        return [EntitiesPrediction(postprocess.to_entities(text, words, keys, scores, path, t.labels, t.scheme))
                for (text, words), (keys, scores, path) in zip(items, t.unit_paths(logits, windows, len(items)))]


class NerTags(TagsEntities):
    @property
    def entity_types(self) -> list[str]:
        return list(self.task.types)

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)


class NerVotes(Votes):
    """The members' logits side by side; decoding votes on entity spans (graftkit/tasks/ner/ensemble.py)."""

    def combine_vote(self, logits: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([x.float() for x in logits], dim=-1)


class NerGold(GoldLabels):
    def gold_key(self, example: Example):
        return tuple(tuple(s) for s in example.label)


class NerCard(StandardCard):
    hub_pipeline = "token-classification"
