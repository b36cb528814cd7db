"""Named-entity recognition: token classification from CoNLL/JSON files to character-offset entity spans."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError, RunFolderError
from graftkit.io import read_json
from graftkit.tasks.base import TaskBase
from graftkit.tasks.ner import head, metrics, postprocess, preprocess
from graftkit.tasks.ner.config import NerConfig
from graftkit.tasks.ner.ensemble import SpanVote, UnitPaths
from graftkit.tasks.ner.readers import _check_spans, log, read_ner, read_ner_rows
from graftkit.tasks.ner.schemes import label_list


class NerTask(TaskBase):
    """Entities as character spans; the model tags words (first subword piece) in ``task.tag_scheme``."""

    name = "ner"
    config_class = NerConfig
    model_class = head.TokenClassifier
    default_metric = "f1"
    fixed_labels = True
    text_augmentation = False  # tags belong to token positions; word-level edits would corrupt them
    can_vote = True  # entity-span majority vote (graftkit/tasks/ner/ensemble.py)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.scheme = self.task_cfg.tag_scheme
        self.crf = self.task_cfg.crf
        self.all_pieces = self.task_cfg.label_all_pieces
        self.types: list[str] = []
        self.labels: list[str] = []
        self.source_schemes: dict[str, str] = {}
        self.transitions: tuple[np.ndarray, ...] | None = None
        self._decoder: postprocess.Decoder | None = None
        #: set when bound to an ensemble run folder: its ensemble.json, and the span vote if it votes
        self.ensemble: dict | None = None
        self.span_vote: SpanVote | None = None

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Read an NER file (the hook ``graftkit.data.dataset`` calls instead of its row readers)."""
        examples, scheme = read_ner(path, data_cfg, with_labels)
        self.source_schemes[str(path)] = scheme
        return examples, 0

    def examples_from_rows(self, rows: list[Row], data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Rows of a ``data.hub`` split (token/tag lists or text with entity spans)."""
        examples, scheme = read_ner_rows(rows, data_cfg, with_labels)
        self.source_schemes[rows[0].path] = scheme
        return examples, 0

    def parse_label(self, raw: Any, row: Row) -> Any:
        """A list of ``{start, end, label}`` objects for ``row.values['text']``."""
        if not isinstance(raw, list):
            raise DataError(row.path, "entities must be a list of {start, end, label}", line=row.line, field="entities")
        spans = [(e.get("start"), e.get("end"), e.get("label")) for e in raw if isinstance(e, dict)]
        text = str(row.values.get(self.data_cfg.text_column if self.data_cfg else "text", ""))
        return [list(s) for s in _check_spans(spans, text, row.path, row.line, None)]

    def strat_key(self, example: Example):
        return min((s[2] for s in example.label), default="O")

    def fit(self, train: list[Example]) -> None:
        self.types = sorted({s[2] for e in train for s in e.label})
        if not self.types:
            raise DataError(train[0].path, "the training data holds no entities; check data.tag_column and "
                            "data.format")
        self.labels = label_list(self.types, self.scheme)

    @property
    def label2id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.labels)}

    def unseen(self, examples: list[Example]) -> list[tuple[Example, str]]:
        """The first example of each entity type that ``fit`` did not see, with that type."""
        known, first = set(self.types), []
        for e in examples:
            for s in e.label:
                if s[2] not in known:
                    known.add(s[2])
                    first.append((e, s[2]))
        return first

    def check(self, examples: list[Example]) -> None:
        """Warn (once per type) about entity types the training data never showed: the model cannot
        predict them, so their entities count as missed (a rare type may be absent from a small train set)."""
        for e, typ in self.unseen(examples):
            log.warning("%s, line %d: entity type %r does not occur in the training data (known: %s); "
                        "its entities count as missed", e.path, e.line, typ, ", ".join(self.types))

    # -- model and training
    def model_kwargs(self) -> dict:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)), "label2id": self.label2id,
                "use_crf": self.crf, "tag_scheme": self.scheme}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Training features. ``fit`` read the label set from these examples, so a type outside it means
        the label state came from elsewhere: refused, since its entities would silently be learnt as O."""
        unseen = self.unseen(examples)
        if unseen:
            e, typ = unseen[0]
            raise DataError(e.path, f"entity type {typ!r} is not in the label set ({', '.join(self.types)}); "
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
        labels, dropped = preprocess.drop_unseen_types([e.label for e in examples], set(self.types))
        if dropped:
            log.warning("validation features during training: %s tagged O (types absent from the training "
                        "data; the final evaluation counts them as missed)",
                        ", ".join(f"{n} {t!r} entities" for t, n in sorted(dropped.items())))
        return self._dataset(examples, labels, tokenizer, max_length)

    def _dataset(self, examples: list[Example], labels: list, tokenizer, max_length: int):
        import datasets

        cols = preprocess.build_features([self.input_of(e) for e in examples], labels, tokenizer, max_length,
                                         self.task_cfg.window_overlap, self.all_pieces, self.scheme, self.label2id)
        return datasets.Dataset.from_dict(cols)

    def collator(self, tokenizer):
        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        preds, gold = eval_pred.predictions, eval_pred.label_ids
        emissions, tags = (preds[0], preds[1]) if isinstance(preds, tuple) else (preds, None)
        masks = [row != -100 for row in gold]
        if tags is None:
            paths = self.decoder([emissions[i][m] for i, m in enumerate(masks)])
        else:
            paths = [tags[i][m].tolist() for i, m in enumerate(masks)]
        gold_tags = [[self.labels[t] for t in gold[i][m]] for i, m in enumerate(masks)]
        pred_tags = [[self.labels[t] for t in p] for p in paths]
        return metrics.scores(gold_tags, pred_tags, self.scheme)

    # -- inference
    def input_of(self, example: Example) -> Any:
        return example.text, example.extra["words"]

    @property
    def decoder(self) -> postprocess.Decoder:
        if self._decoder is None:
            if self.crf and self.transitions is None and self.ensemble is None:
                raise RunFolderError("CRF transitions are not loaded; create the task through Predictor(run_dir)")
            self._decoder = postprocess.Decoder(self.labels, self.scheme, self.transitions)
        return self._decoder

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        items = [preprocess.as_words(x) for x in inputs]
        word_lists = [[t[s:e] for s, e in w] for t, w in items]
        enc, windows = preprocess.tokenize_windows(word_lists, tokenizer, max_length, self.task_cfg.window_overlap,
                                                   self.all_pieces)
        keep = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        features = tokenizer.pad(keep, padding=True, return_tensors="np")
        return dict(features), (items, windows)

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        items, windows = context
        return [{"entities": postprocess.to_entities(text, words, keys, scores, path, self.labels, self.scheme)}
                for (text, words), (keys, scores, path) in zip(items, self.unit_paths(logits, windows, len(items)))]

    def unit_paths(self, logits: np.ndarray, windows: Sequence[preprocess.Window], n_inputs: int) -> UnitPaths:
        """Per input: its unit keys, their scores and the decoded tag ids (voted for a voting ensemble)."""
        if self.span_vote is not None:
            return self.span_vote(logits, windows, n_inputs)
        stitched = postprocess.stitch(logits, windows, n_inputs)
        paths = self.decoder([scores for _, scores in stitched])
        return [(keys, scores, path) for (keys, scores), path in zip(stitched, paths)]

    # -- ensembles (graftkit/inference/ensemble.py)
    def ensemble_logits(self, logits: list) -> Any:
        """Combine "vote": the members' logits side by side; ``unit_paths`` decodes each and votes on spans."""
        return torch.cat([x.float() for x in logits], dim=-1)

    @property
    def logit_width(self) -> int:
        """Logit columns this run's model returns (one per tag; a voting ensemble's members side by side)."""
        return self.span_vote.width if self.span_vote is not None else len(self.labels)

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(examples, predictions, self.types, self.scheme, out_dir, plots)

    def state(self) -> dict:
        return {"labels": self.labels, "types": self.types, "scheme": self.scheme, "crf": self.crf,
                "label_all_pieces": self.all_pieces, "source_schemes": self.source_schemes}

    def load_state(self, state: dict) -> None:
        self.labels, self.types = list(state["labels"]), list(state["types"])
        self.scheme, self.crf = state["scheme"], bool(state["crf"])
        self.all_pieces = bool(state.get("label_all_pieces", False))
        self.source_schemes = dict(state.get("source_schemes", {}))
        self._decoder = None

    def bind_run(self, run_dir: Path, load_member) -> None:
        """Read the trained CRF transitions from the run folder's safetensors (decoding needs them).

        An ensemble folder has no CRF of its own: averaged probabilities are decoded under the
        scheme's constraints only, and a voting ensemble decodes each member with its own CRF.
        """
        if (Path(run_dir) / "ensemble.json").is_file():
            self.ensemble = read_json(Path(run_dir) / "ensemble.json")
            self.transitions, self._decoder = None, None
            if self.ensemble.get("combine") == "vote":
                members = [load_member(Path(run_dir) / m) for m in self.ensemble["members"]]
                self.span_vote = SpanVote(members, self.ensemble.get("vote", 0.5))
            return
        if not self.crf:
            return
        from safetensors import safe_open

        files = sorted(Path(run_dir).glob("*.safetensors"))
        for f in files:
            with safe_open(str(f), framework="np") as st:
                # full runs store "crf.transitions"; LoRA adapter runs prefix it (base_model.model.crf...)
                key = next((k for k in st.keys() if k.endswith("crf.transitions")), None)
                if key is not None:
                    prefix = key[: -len("transitions")]
                    self.transitions = tuple(st.get_tensor(f"{prefix}{k}") for k in
                                             ("start_transitions", "end_transitions", "transitions"))
                    self._decoder = None
                    return
        raise RunFolderError(f"{run_dir}: task.crf is set but no safetensors file holds crf.transitions")
