"""The capabilities a task may offer: small interfaces that cross-cutting code asks for by type.

A task lists the classes that implement its capabilities (``Task.capabilities``); each such class
subclasses one interface below and is built with the task it serves (composition: ``self.task``
holds the labels, scheme and settings it reads). Cross-cutting code never compares task names:

    explanation = task.capability(Explains, "explain").explain(...)

``Task.capability`` returns the implementation or raises :class:`~graftkit.errors.UnsupportedError`
in one line naming the task and the commands it does support (``graftkit.tasks.matrix``).
Registration (``graftkit.tasks.TASKS.register``) checks that every listed class implements every
method of its interface, so a missing method fails at import, not when a user first calls it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Hashable, Protocol, Sequence

import numpy as np
import torch

from graftkit.data.dataset import Example
from graftkit.data.perturb import Perturbed
from graftkit.modeling.divergence import softmax_divergence
from graftkit.tasks.predictions import Prediction


class Capability(ABC):
    """Base of every capability interface; an implementation is built with the task it serves."""

    #: one line on what the capability gives (docs/architecture.md lists them)
    summary: ClassVar[str] = ""

    def __init__(self, task: Any):
        self.task = task


# -- how a task trains (exactly one of the two) -----------------------------------------------
class TrainsWithTrainer(Capability):
    """Trains on graftkit's one ``transformers.Trainer`` path (graftkit/train/trainer.py)."""

    summary = "trains on graftkit's Trainer path: features, collator, loss and validation metrics"

    @abstractmethod
    def model_kwargs(self) -> dict:
        """Extra config kwargs for ``task.model_class.from_pretrained`` (num_labels, id2label, ...)."""

    @abstractmethod
    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """A ``datasets.Dataset`` of unpadded training features with ``labels``."""

    @abstractmethod
    def collator(self, tokenizer) -> Callable:
        """Batch collator (dynamic padding)."""

    @abstractmethod
    def compute_metrics(self, eval_pred) -> dict[str, float]:
        """Validation metrics from a ``transformers.EvalPrediction``."""

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """The validation ``datasets.Dataset`` the Trainer evaluates."""
        return self.build_dataset(examples, tokenizer, max_length)

    def prepare_model(self, model, tokenizer):
        """Adjust the freshly loaded pretrained model (special token ids, generation settings)."""
        return model

    def training_arguments(self) -> dict:
        """Extra ``TrainingArguments`` the task needs (e.g. keeping columns its collator reads)."""
        return {}

    def loss_fn(self, train: list[Example]) -> Callable | None:
        """``loss(logits, labels)`` replacing the model's own, or None to keep it."""
        return None

    def output_divergence(self, first: torch.Tensor, second: torch.Tensor,
                          labels: torch.Tensor | None = None) -> torch.Tensor:
        """How far two outputs of the model on one batch are apart (R-Drop); softmax KL unless overridden."""
        return softmax_divergence(first, second, labels)

    #: ``train.label_smoothing`` applies: the loss is a cross-entropy over mutually exclusive classes
    smooths_labels: ClassVar[bool] = True

    def logits_reducer(self) -> Callable | None:
        """``Trainer(preprocess_logits_for_metrics=...)``: shrink evaluation logits before they are
        gathered (vocabulary-wide MLM logits), or None to keep them."""
        return None


class TrainsItself(Capability):
    """Trains with its own library's trainer (sentence-transformers) inside graftkit's run folder."""

    summary = "trains with its own library's trainer, honouring the config keys it declares"

    #: what trains this path, as a refusal of an unsupported key names it (``sentence-transformers``)
    trained_by: ClassVar[str] = "its own library"

    @abstractmethod
    def supported_keys(self) -> tuple[str, ...]:
        """Dotted config keys (or whole sections) this path honours; any other key that a config sets is
        refused by name before training starts (graftkit/train/keys.py)."""

    def fixed_settings(self) -> dict[str, Any]:
        """Dotted key → the value this path always trains with (e.g. no early stopping): a config may set a key
        it does not honour to that value."""
        return {}

    @abstractmethod
    def train_run(self, cfg: Any, session: Any):
        """Train and write the run folder; ``session`` is the train layer's ``TrainSession``."""


# -- what a run predicts (exactly one of the three) --------------------------------------------
class DecodesLogits(Capability):
    """Inputs → features → a backend's logits (torch or ONNX) → typed predictions."""

    summary = "predicts through a backend's logits (torch or ONNX): encode, then decode"

    @abstractmethod
    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int) -> tuple[dict[str, np.ndarray], Any]:
        """Padded numpy features for a batch of inputs, plus context for ``decode``."""

    @abstractmethod
    def decode(self, logits: np.ndarray, context: Any) -> list[Prediction]:
        """One prediction per input."""


class Generates(Capability):
    """Writes text with ``model.generate`` (graftkit.inference.generator.Generator)."""

    summary = "generates text (batched, streamed, cancellable)"

    @property
    @abstractmethod
    def decoder_only(self) -> bool:
        """True when the model continues the prompt (left padding); False for encoder–decoders."""

    @property
    @abstractmethod
    def takes_chat(self) -> bool:
        """True when inputs are chat message lists rather than prompt strings."""

    @abstractmethod
    def settings(self):
        """The run's ``GenerationSettings`` (decoding settings and the override limit)."""

    @abstractmethod
    def generation_config(self, tokenizer, model_config):
        """The run's decoding settings plus the special token ids generation needs."""

    @abstractmethod
    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        """Token ids of each input as the model sees it at generation time (truncated to fit)."""

    @abstractmethod
    def prompt_tokens(self, prompt: Any, tokenizer) -> int:
        """Untruncated token count of one input (a server's prompt-length cap)."""

    @abstractmethod
    def evaluate_generation(self, model, tokenizer, examples: list[Example]) -> dict[str, float]:
        """Validation metrics from generating text ({} when nothing is generated during training)."""

    @abstractmethod
    def decoding_section(self, run_dir: Path) -> list[str]:
        """Model-card lines describing the decoding settings in force."""


class Embeds(Capability):
    """Turns texts into unit-length vectors (graftkit.inference.embedder.Embedder)."""

    summary = "embeds texts as unit-length vectors (index, search, /v1/embed)"

    @abstractmethod
    def load_encoder(self, run_dir: Path, max_length: int | None = None):
        """The run's encoder, ready to embed."""

    @abstractmethod
    def embed(self, encoder, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 unit-length vectors."""


# -- what predictions mean -------------------------------------------------------------------
class ScoresLabels(Capability):
    """Predictions are labels with probabilities (classification-like)."""

    summary = "predicts labels with probabilities"

    @property
    @abstractmethod
    def labels(self) -> list[str]:
        """Label names in id order."""

    @property
    @abstractmethod
    def multi_label(self) -> bool:
        """True when each input may get several labels."""


class TagsEntities(Capability):
    """Predictions are entity spans of typed tokens."""

    summary = "tags tokens: predicts typed entity spans"

    @property
    @abstractmethod
    def entity_types(self) -> list[str]:
        """Entity types the model was trained on."""

    @property
    @abstractmethod
    def labels(self) -> list[str]:
        """Tag names in id order."""


class Ranks(Capability):
    """Scores (user history, candidate) pairs for a recommender."""

    summary = "scores (history, candidate) pairs for recommendation"

    @abstractmethod
    def history_settings(self, max_history: int, separator: str) -> tuple[int, str]:
        """How many recent history items make the history text and what joins them: the run's own settings
        where it was trained with some, else the caller's."""

    def history_text(self, history: Sequence[str], max_history: int, separator: str) -> str:
        """The text that stands for a user's history."""
        max_history, separator = self.history_settings(max_history, separator)
        items = [h for h in history if h.strip()][-max_history:]
        return separator.join(items) if items else "(no history)"

    @abstractmethod
    def pair_scores(self, runner, history: str, candidates: Sequence[str], batch_size: int) -> np.ndarray:
        """One interest score per candidate (higher: likelier clicked); ``runner`` is the run's
        inference object (``graftkit.inference.open_run``)."""


class ScoresResponses(Capability):
    """Scores how good a response is for a prompt (a reward): applications rank candidate replies by it."""

    summary = "scores (prompt, response) pairs: a reward that ranks candidate replies"

    @abstractmethod
    def response_scores(self, runner, prompt: str, responses: Sequence[str], batch_size: int) -> np.ndarray:
        """One score per response to ``prompt`` (higher: better); ``runner`` is the run's inference object
        (``graftkit.inference.open_run``)."""


class GoldLabels(Capability):
    """Each input has one right answer (a class, a label set, entity spans, a number)."""

    summary = "one right answer per input: class balance and conflicting labels apply"

    @abstractmethod
    def gold_key(self, example: Example) -> Hashable:
        """A hashable form of the example's label (data-quality balance and conflicts)."""


# -- cross-cutting features -------------------------------------------------------------------
class Calibrates(Capability):
    """Scores are probabilities: temperature scaling and decision tuning on validation."""

    summary = "temperature scaling of probabilities, decision thresholds tuned on validation"

    @abstractmethod
    def temperature_targets(self, examples: list[Example]) -> np.ndarray:
        """Gold targets for temperature scaling (class ids; a 0/1 matrix per label for multi-label)."""

    @property
    @abstractmethod
    def temperature(self) -> list[float]:
        """The temperature in force (one value; one per label for multi-label)."""

    @abstractmethod
    def set_temperature(self, temperature: list[float]) -> None:
        """Divide the logits by ``temperature`` when decoding (every backend)."""

    @abstractmethod
    def tune_decision(self, examples: list[Example], predictions: list[Prediction]) -> str | None:
        """Tune decision state (e.g. multi-label thresholds) on validation predictions; may do nothing. Returns a
        note when it tuned anything: the validation scores then come from state fitted on validation itself."""


class DetectsOutOfScope(Capability):
    """Flags inputs the model was not built for: out-of-scope scores and a threshold chosen on validation."""

    summary = "flags out-of-scope inputs (softmax, max logit, energy, Mahalanobis, kNN; threshold from validation)"

    @property
    @abstractmethod
    def settings(self):
        """The run's detector settings (the task's ``out_of_scope`` section), or None."""

    @property
    @abstractmethod
    def enabled(self) -> bool:
        """The run's config asks for a detector (then training fits one)."""

    @property
    @abstractmethod
    def fitted(self) -> bool:
        """The run holds a fitted detector (its predictions carry ``out_of_scope``)."""

    @property
    @abstractmethod
    def needs_features(self) -> bool:
        """Scoring reads the model's features (the input of its output layer), not only its logits."""

    @abstractmethod
    def split_off(self, examples: list[Example]) -> tuple[list[Example], list[Example]]:
        """(in-scope, out-of-scope) examples: rows labelled as out of scope are no class to learn."""

    @abstractmethod
    def fit(self, logits: np.ndarray, features: np.ndarray | None, examples: list[Example]) -> None:
        """Fit what the detectors keep of the training rows (class means, covariance, a feature bank)."""

    @abstractmethod
    def scores(self, logits: np.ndarray, features: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every asked detector's out-of-scope score per row (higher: more likely out of scope)."""

    @abstractmethod
    def choose(self, detector: str, threshold: float) -> None:
        """Use ``detector`` with ``threshold`` from now on (saved with the run)."""

    @property
    @abstractmethod
    def chosen(self) -> tuple[str, float] | None:
        """(the flagging detector, its threshold), or None before one is chosen."""

    @abstractmethod
    def flag(self, predictions: list[Prediction], logits: np.ndarray,
             features: np.ndarray | None) -> list[Prediction]:
        """The predictions with ``out_of_scope`` and its score set (as they are when nothing is fitted)."""

    @abstractmethod
    def save(self, run_dir: Path) -> None:
        """Write the fitted detector into the run folder (JSON and safetensors)."""

    @abstractmethod
    def load(self, run_dir: Path) -> None:
        """Restore the detector a run folder holds (none: nothing is flagged)."""


class Votes(Capability):
    """An ensemble of this task can vote (``graftkit ensemble --combine vote``)."""

    summary = "ensembles vote on the task's own unit (NER: entity spans)"

    @abstractmethod
    def combine_vote(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """The ensemble model's output from its members' logits; decoding then votes."""


class AveragesMembers(Capability):
    """An ensemble of this task can average its members (``graftkit ensemble --combine mean``)."""

    summary = "ensembles average the members' probabilities (or values)"

    @abstractmethod
    def combine_mean(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """Logits whose usual decoding sees the members' averaged probabilities (or values)."""


class AttributionEngine(Protocol):
    """What the explainer (graftkit/evaluate/explain.py) offers a task's :class:`Explains`."""

    predictor: Any
    tokenizer: Any
    max_length: int
    device: Any

    def attribute(self, enc, f: Callable, steps: int) -> dict[str, Any]:
        """Integrated Gradients of ``f(logits)`` for encoding ``enc``: attrs, delta, score, ..."""


@dataclass
class ExplainedBlock:
    """One attributed target for display: a heading, the words with attributions and the integration's
    completeness delta, steps and convergence (a block without words is a heading alone)."""

    heading: str
    words: list[dict]
    delta: float | None = None
    steps: int = 0
    converged: bool = True


class Explains(Capability):
    """Word attributions for a prediction (Integrated Gradients over the input embeddings)."""

    summary = "explains a prediction: word attributions toward a target"

    @abstractmethod
    def explain(self, engine: AttributionEngine, text: str, pair: str | None, target: str | int | None,
                steps: int) -> dict[str, Any]:
        """The explanation of one input (JSON-ready)."""

    @abstractmethod
    def blocks(self, explanation: dict[str, Any]) -> list[ExplainedBlock]:
        """The explanation's attributed targets, for the terminal and HTML renderers."""


class Perturbs(Capability):
    """Robustness: how to perturb a labelled example and whether a prediction changed."""

    summary = "robustness: perturbs inputs (labels moved along) and measures prediction changes"

    #: what ``changed`` measures, as named in the report
    change_metric: ClassVar[str] = "flip_rate"

    @abstractmethod
    def perturb(self, example: Example, name: str, seed: int, key: int, rate: float) -> tuple[Example, Perturbed]:
        """``example`` with its text(s) perturbed (gold labels tied to offsets move with the text)."""

    @abstractmethod
    def changed(self, clean: Prediction, noisy: Prediction, example: Example, perturbed: Perturbed) -> float:
        """1.0 if the prediction changed, else 0.0 (or the size of the change, per ``change_metric``)."""


class FindsLabelErrors(Capability):
    """Label-error search: out-of-fold probabilities ranked by cleanlab."""

    summary = "finds likely mislabelled rows (k-fold training + cleanlab)"

    @abstractmethod
    def fold_strata(self, rows: Sequence[Example]) -> list | None:
        """Labels to stratify the folds by, or None for plain k-fold."""

    @abstractmethod
    def class_counts(self, rows: Sequence[Example]) -> Counter:
        """Rows per class (each class needs at least one per fold)."""

    @abstractmethod
    def probabilities(self, logits: np.ndarray, context: Any, n: int) -> list:
        """Per row of one batch, the probabilities cleanlab reads (NER: one matrix per sentence)."""

    @abstractmethod
    def rank(self, rows: Sequence[Example], probs: list) -> tuple[list[int], np.ndarray]:
        """Indices cleanlab flags (worst first) and every row's label quality (low: likely wrong)."""

    @abstractmethod
    def suggested(self, probs: Any) -> str:
        """The label the model would give instead ('' when the task has no single suggestion)."""

    @abstractmethod
    def given_text(self, example: Example) -> str:
        """The given label, as the report shows it."""

    @abstractmethod
    def label_names(self, example: Example) -> list[str]:
        """The label names an example counts under in the per-label summary."""


class Distills(Capability):
    """Knowledge distillation: the student learns from a teacher run's soft labels (train.distill)."""

    summary = "distils from a teacher run's logits, and can teach a student"

    @property
    @abstractmethod
    def token_level(self) -> bool:
        """True when the KL compares labelled token positions rather than whole examples."""

    @abstractmethod
    def check_student(self) -> None:
        """Refuse (ConfigError) a configuration of this task that distillation cannot handle."""

    @abstractmethod
    def check_teacher(self, teacher_task: Any, where: str) -> None:
        """Refuse (ConfigError) a teacher of the same task whose labels or settings differ."""

    @abstractmethod
    def unlabelled_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Features of texts only the teacher labels (label -100), or ConfigError if not supported."""


class LearnsFromFewLabels(Capability):
    """Few-shot training (SetFit: contrastive pairs, then a logistic-regression head) and zero-shot heads from
    label descriptions, both saved as an ordinary run of the task (graftkit/train/few_shot.py)."""

    summary = "learns from few labels: SetFit few-shot training, a zero-shot head from label descriptions"

    @abstractmethod
    def check_few_shot(self) -> None:
        """Refuse (ConfigError) a setting of this task the few-shot path cannot apply."""

    @abstractmethod
    def rows_per_label(self, train: list[Example]) -> float:
        """Training rows per label on average (``train.strategy: auto`` compares it with its threshold)."""

    @abstractmethod
    def model_kwargs(self) -> dict:
        """Config kwargs for ``task.model_class.from_pretrained`` (the same model the Trainer path trains)."""

    @abstractmethod
    def targets(self, examples: list[Example]) -> list:
        """SetFit's labels: a class id per row, or a 0/1 list per row for multi-label."""

    @property
    @abstractmethod
    def multi_target_strategy(self) -> str | None:
        """SetFit's ``multi_target_strategy`` (``one-vs-rest`` for multi-label), or None."""

    @abstractmethod
    def new_head(self):
        """The unfitted scikit-learn head SetFit fits on the tuned features."""

    @abstractmethod
    def head_weights(self, head) -> tuple[np.ndarray, np.ndarray]:
        """(weight (labels, dim), bias (labels,)) of the output layer whose logits, decoded as the task decodes
        them, give the fitted head's probabilities."""

    @abstractmethod
    def zero_shot_head(self, features: np.ndarray, descriptions: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of an output layer that scores each label by the cosine similarity of an input's features
        to its descriptions' (``features``: one row per description, in order)."""


@dataclass(frozen=True)
class PseudoLabel:
    """A pool row labelled by the model: the example with its predicted label, the confidence in that whole
    label, and the class the added rows are balanced and thresholded by."""

    example: Example
    confidence: float
    key: str


class SelfTrains(Capability):
    """Self-training (``train.self_training``): the model's confident predictions on unlabelled text become
    training rows (graftkit/train/self_training.py runs the rounds)."""

    summary = "self-training: confident predictions on unlabelled text join the training data, class-balanced"

    def pool_example(self, example: Example) -> Example:
        """A pool row (read as text) with what this task's ``input_of`` reads of it."""
        return example

    @abstractmethod
    def pseudo_label(self, example: Example, prediction: Prediction) -> PseudoLabel | None:
        """``example`` (a pool row) labelled by ``prediction``; None when the prediction yields no training row
        (an out-of-scope input, a sentence with no entity)."""

    @abstractmethod
    def is_right(self, example: Example, prediction: Prediction) -> bool:
        """Whether ``prediction`` gets a gold-labelled example's whole label right (the thresholds' precision)."""

    def check_consistency(self) -> None:
        """Refuse (ConfigError) ``train.self_training.consistency`` when this task's outputs cannot be compared
        between a text and its augmented copy."""


class Augments(Capability):
    """Word-level text augmentation (``augment:``) keeps this task's labels valid."""

    summary = "word-level text augmentation of the training split"

    @abstractmethod
    def augment(self, examples: list[Example], settings, tokenizer, embedding_weight) -> tuple[list[Example], dict]:
        """The training examples plus augmented copies, and the counts."""


class Exports(Capability):
    """The run's model exports to ONNX as a graph of tokenizer features → logits."""

    summary = "exports to ONNX (fp32, int8) with a parity check"

    @abstractmethod
    def onnx_inputs(self, model, tokenizer) -> list[str]:
        """The graph's input names, in order."""


class CardMetadata(Capability):
    """What the model card says about this task (every task has one)."""

    summary = "model-card metadata: pipeline tag, usage, notes"

    @property
    @abstractmethod
    def pipeline_tag(self) -> str | None:
        """The Hub pipeline tag, or None."""

    @abstractmethod
    def usage(self, run_path: Path) -> list[str]:
        """The card's "Use" section lines."""

    @abstractmethod
    def notes(self, results: dict) -> list[str]:
        """Remarks under the results table (may be empty)."""


#: a task has exactly one of each group
TRAINING_PATHS = (TrainsWithTrainer, TrainsItself)
INFERENCE_KINDS = (DecodesLogits, Generates, Embeds)

INTERFACES: tuple[type[Capability], ...] = (
    TrainsWithTrainer, TrainsItself, DecodesLogits, Generates, Embeds, ScoresLabels, TagsEntities, Ranks,
    ScoresResponses, GoldLabels, Calibrates, DetectsOutOfScope, Votes, AveragesMembers, Explains, Perturbs,
    FindsLabelErrors, Distills, LearnsFromFewLabels, SelfTrains, Augments, Exports, CardMetadata)


def interface_of(impl: type) -> type[Capability]:
    """The interface ``impl`` implements (exactly one of ``INTERFACES`` among its bases)."""
    found = [i for i in INTERFACES if issubclass(impl, i)]
    if len(found) != 1:
        raise TypeError(f"{impl.__name__} must implement exactly one capability interface, implements "
                        f"{[i.__name__ for i in found] or 'none'}")
    return found[0]
