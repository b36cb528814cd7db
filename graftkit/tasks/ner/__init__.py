"""Named-entity recognition: token classification from CoNLL/JSON files to character-offset entity spans."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError, RunFolderError
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.common.ensemble import SoftmaxMean
from graftkit.tasks.common.export import TokenizerGraph
from graftkit.tasks.ner import head, metrics, postprocess, preprocess
from graftkit.tasks.ner.capabilities import (
    NerCard,
    NerDecoding,
    NerGold,
    NerTags,
    NerTraining,
    NerVotes,
)
from graftkit.tasks.ner.config import NerConfig
from graftkit.tasks.ner.ensemble import SpanVote, UnitPaths
from graftkit.tasks.ner.migrate import MIGRATIONS
from graftkit.tasks.ner.readers import _check_spans, log, read_ner, read_ner_rows
from graftkit.tasks.ner.schemes import label_list
from graftkit.tasks.ner.self_training import NerSelfTraining
from graftkit.tasks.ner.trust import NerDistills, NerExplains, NerLabelErrors, NerPerturbs


class NerTask(Task):
    """Entities as character spans; the model tags words (first subword piece) in ``task.tag_scheme``."""

    name = "ner"
    config_class = NerConfig
    model_class = head.TokenClassifier
    default_metric = "f1"
    capabilities = (NerTraining, NerDecoding, NerTags, NerVotes, SoftmaxMean, NerGold, NerCard, NerExplains,
                    NerPerturbs, NerLabelErrors, NerDistills, TokenizerGraph, NerSelfTraining)
    migrations = MIGRATIONS

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
        """Read an NER file (CoNLL columns, character-per-line, span JSON Lines or CLUENER)."""
        examples, scheme = read_ner(path, data_cfg, self.task_cfg, with_labels)
        self.source_schemes[str(path)] = scheme
        return examples, 0

    def examples_from_rows(self, rows: list[Row], data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Rows of a ``data.hub`` split (token/tag lists or text with entity spans)."""
        examples, scheme = read_ner_rows(rows, data_cfg, self.task_cfg, with_labels)
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
            raise DataError(train[0].path, "the training data holds no entities; check task.tag_column and "
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

    def input_of(self, example: Example) -> Any:
        return example.text, example.extra["words"]

    # -- decoding (the capabilities call these)
    @property
    def decoder(self) -> postprocess.Decoder:
        if self._decoder is None:
            if self.crf and self.transitions is None and self.ensemble is None:
                raise RunFolderError("CRF transitions are not loaded; create the task through Predictor(run_dir)")
            self._decoder = postprocess.Decoder(self.labels, self.scheme, self.transitions)
        return self._decoder

    def unit_paths(self, logits: np.ndarray, windows: Sequence[preprocess.Window], n_inputs: int) -> UnitPaths:
        """Per input: its unit keys, their scores and the decoded tag ids (voted for a voting ensemble)."""
        if self.span_vote is not None:
            return self.span_vote(logits, windows, n_inputs)
        stitched = postprocess.stitch(logits, windows, n_inputs)
        paths = self.decoder([scores for _, scores in stitched])
        return [(keys, scores, path) for (keys, scores), path in zip(stitched, paths)]

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
            self.ensemble = RunFolder(run_dir).ensemble_spec()
            self.transitions, self._decoder = None, None
            if self.ensemble["combine"] == "vote":
                members = [load_member(Path(run_dir) / m) for m in self.ensemble["members"]]
                self.span_vote = SpanVote(members, self.ensemble.get("vote", 0.5))
            return
        if self.crf:
            self.transitions = head.read_transitions(Path(run_dir))
            self._decoder = None
