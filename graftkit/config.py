"""Typed run configuration: one pydantic model per concern, loaded from YAML.

Unknown keys are rejected and every error names the dotted key, so a typo in a config
file never silently falls back to a default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graftkit.errors import ConfigError

class ConfigPath:
    """Marks a config field that holds a file or folder (``Annotated[str, ConfigPath()]``; a list of them too).

    The one rule for relative paths, in run configs and application configs alike: a path written in a config
    file is relative to that file's folder; a path given on the command line (``--set key=value``) is relative to
    the current folder, as is a default left unwritten (``output_dir: runs``). ``or_name``: the value may instead be a name (a hub id, ``bundled:minilm``, ``auto``); it
    is taken as a path when it starts with ``./`` or ``../`` or names something that exists there.
    """

    def __init__(self, or_name: bool = False):
        self.or_name = or_name

    def resolve(self, value: str, base: Path) -> str:
        if Path(value).is_absolute():
            return value
        if self.or_name and not value.startswith(("./", "../")) and not (base / value).exists():
            return value
        return str((base / value).resolve())


#: metrics where smaller is better (`train.metric`, `tune.metric`, the export parity check); all others: larger
LOWER_IS_BETTER = frozenset({"loss", "rmse", "mae", "mse", "perplexity", "ece", "brier", "nll"})


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (optionally prefixed ``eval_``/``test_``) is better."""
    return metric.split("_", 1)[-1] not in LOWER_IS_BETTER if metric.startswith(("eval_", "test_")) \
        else metric not in LOWER_IS_BETTER


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    """How to carve validation/test sets out of the train file when they are not given."""

    validation: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of rows for validation")
    test: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of rows for test")
    seed: int = 42
    stratify: bool = True

    @model_validator(mode="after")
    def _fits(self) -> "SplitConfig":
        if self.validation + self.test >= 1.0:
            raise ValueError("validation + test must leave some rows for training (sum < 1)")
        return self


class HubConfig(_Strict):
    """A dataset on the Hugging Face hub (needs a network connection)."""

    path: str
    name: str | None = None
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None


class DataConfig(_Strict):
    """Where the labelled data is and which columns mean what."""

    train: Annotated[str | None, ConfigPath()] = Field(None, description="train file or folder (csv, tsv, jsonl, "
                                                       "parquet, save_to_disk dir)")
    validation: Annotated[str | None, ConfigPath()] = None
    test: Annotated[str | None, ConfigPath()] = None
    hub: HubConfig | None = None
    format: str = Field("auto", description="auto (from the suffix or, for a task that reads its own files, "
                        "their content), or a format of graftkit/data/readers.py READERS (checked for the task)")
    encoding: str = "utf-8"
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str | list[str] = Field("label", description="label column; regression: one or more target columns")
    label_separator: str | None = Field(None, description="multi-label: separator inside the label field, e.g. '|'")
    split: SplitConfig = SplitConfig()
    drop_invalid: bool = Field(False, description="drop invalid rows (and report how many) instead of failing")
    max_length: int = Field(128, ge=8, le=8192)

    @model_validator(mode="after")
    def _has_source(self) -> "DataConfig":
        if not self.train and not self.hub:
            raise ValueError("set data.train (a file or folder) or data.hub (a hub dataset)")
        return self


class ExtendVocabConfig(_Strict):
    """`model.extend_vocab`: add the training text's unknown characters and much-split words as tokens
    (graftkit/modeling/vocab.py). A plain string is short for ``source``: ``off``, ``auto`` or a token file."""

    source: Annotated[str, ConfigPath(or_name=True)] = Field("off", description="off, auto, or a UTF-8 file with "
                                                             "one token per line")
    min_count: int = Field(2, ge=1, description="auto: times a character or word must occur in the training text")
    max_tokens: int = Field(20000, ge=1, description="auto: at most this many new tokens, most frequent first")
    split_pieces: int = Field(3, ge=2, description="auto: a word the tokenizer splits into this many pieces or "
                              "more becomes a token")
    words: bool = Field(True, description="auto: add such words, not only characters mapped to [UNK]")
    learning_rate_scale: float = Field(1.0, ge=1.0, description="each optimiser step moves the added tokens' "
                                       "embedding rows this many times as far as the rest, since they start "
                                       "untrained (graftkit/train/new_rows.py); 1 = the same learning rate")


class DistillConfig(_Strict):
    """`train.distill`: knowledge distillation from a teacher run (graftkit/train/distill.py)."""

    teacher: Annotated[str, ConfigPath()] = Field(..., description="teacher run folder (full, adapter or ensemble) with the same task, "
                         "labels and tokenizer")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="loss = alpha * task loss + (1 - alpha) * T² * KL")
    temperature: float = Field(2.0, gt=0.0, description="softmax temperature T of both sides of the KL")
    unlabelled: Annotated[str | None, ConfigPath()] = Field(None, description="classification: more texts (.txt one "
                                                            "per line, or a file "
                                   "with data.text_column) that only the teacher labels")


class PretrainConfig(_Strict):
    """`pretrain:`: masked-LM on the task's training text before fine-tuning (graftkit/train/pretrain.py)."""

    epochs: float = Field(1, gt=0)
    max_steps: int = Field(-1, description="stop after this many steps (overrides epochs when > 0)")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_mask: bool = True
    validation: float = Field(0.05, ge=0.0, lt=1.0, description="share of the texts held out for perplexity")
    texts: Annotated[list[str], ConfigPath()] = Field([], description="more unlabelled text files (.txt, one "
                                                      "document per line)")


class ModelConfig(_Strict):
    """The pretrained checkpoint to start from."""

    name_or_path: Annotated[str, ConfigPath(or_name=True)] = Field("bundled:minilm", description="hub id, local "
                                                                   "folder, or bundled:minilm")
    revision: str | None = None
    dropout: float | None = Field(None, ge=0.0, lt=1.0, description="override hidden/attention dropout")
    extend_vocab: ExtendVocabConfig = Field(ExtendVocabConfig(), description="add the training text's unknown "
                                            "characters / split words as tokens: off, auto, a token file, or "
                                            "{source, min_count, max_tokens, split_pieces, words}")
    keep_layers: list[int] | None = Field(None, description="keep only these transformer layers (0-based) of the "
                                          "checkpoint, initialised from them (DistilBERT-style)")

    @field_validator("extend_vocab", mode="before")
    @classmethod
    def _vocab_shorthand(cls, v: Any) -> Any:
        return {"source": v} if isinstance(v, str) else v


class TaskConfigBase(_Strict):
    """What every task's config has; each task folder's ``config.py`` subclasses it with its own keys
    and a ``type`` literal, and ``RunConfig.task`` is the union of them (graftkit/tasks/run_config.py)."""

    type: str


class EarlyStoppingConfig(_Strict):
    patience: int = Field(2, ge=1)
    threshold: float = Field(0.0, ge=0.0)


class DistributedConfig(_Strict):
    """Multi-process training (`graftkit train --nproc N`, torchrun, accelerate launch); unused in one process."""

    strategy: Literal["ddp", "fsdp", "zero2", "zero3"] = Field(
        "ddp", description="ddp: a full model copy per process; fsdp / zero2 / zero3 (DeepSpeed): shard it")
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="auto: nccl on GPU, gloo on CPU")
    fsdp_config: dict[str, Any] = Field(default_factory=dict, description="extra TrainingArguments.fsdp_config keys")
    deepspeed_config: str | None = Field(None, description="DeepSpeed JSON to use instead of the generated ZeRO one")


class PeftSettings(_Strict):
    """Parameter-efficient fine-tuning (the `peft` library; bottleneck adapters are graftkit's own,
    see modeling/bottleneck.py); the task head stays trainable."""

    method: Literal["lora", "adalora", "ia3", "prefix_tuning", "prompt_tuning", "bottleneck"] = "lora"
    r: int = Field(8, ge=1, description="lora/adalora rank (adalora: final average rank); bottleneck: adapter width")
    alpha: float = Field(16, gt=0, description="lora/adalora scaling numerator")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] | str | None = Field(None, description="module names or a regex; default per architecture")
    num_virtual_tokens: int = Field(20, ge=1, description="prefix/prompt tuning: number of virtual tokens")
    train_pooler: bool = Field(True, description="also train the backbone's pooler (BERT: dense+tanh over [CLS]) "
                               "in full when the task head reads it")
    options: dict[str, Any] = Field({}, description="extra keyword arguments for the peft config class "
                                    "(bottleneck: {activation: relu})")


class FreezeConfig(_Strict):
    """Parts of the backbone kept fixed during training."""

    embeddings: bool = False
    layers: int = Field(0, ge=0, description="freeze the first N transformer layers")


class AdversarialConfig(_Strict):
    """Adversarial training on the word embeddings (FGM: one step; PGD: `steps` projected steps)."""

    method: Literal["fgm", "pgd"] = "fgm"
    epsilon: float = Field(1.0, gt=0)
    alpha: float = Field(0.3, gt=0, description="pgd: step size")
    steps: int = Field(3, ge=1, description="pgd: number of attack steps")


class FewShotConfig(_Strict):
    """`train.few_shot`: the SetFit strategy for few labelled rows (graftkit/train/few_shot.py)."""

    auto_below: float = Field(16, gt=0, description="strategy auto: few_shot when the training split has fewer "
                              "rows per label than this on average, else standard")
    pairs_per_row: int = Field(20, ge=1, description="SetFit's num_iterations: same-label and different-label pairs "
                               "drawn per training row for the contrastive stage")
    sampling: Literal["oversampling", "undersampling", "unique"] = Field(
        "oversampling", description="SetFit's sampling_strategy: how positive and negative pairs are balanced")


class SelfTrainingConfig(_Strict):
    """`train.self_training`: rounds in which the run's own confident predictions on unlabelled text join its
    training data (graftkit/train/self_training.py)."""

    unlabelled: Annotated[str, ConfigPath()] = Field(..., description="the unlabelled texts: a .txt file (one per "
                                                     "line) or any readable file with the text column")
    text_column: str | None = Field(None, description="the column of `unlabelled` holding the text (default: "
                                    "data.text_column)")
    rounds: int = Field(3, ge=1, description="at most this many rounds after the first training on labelled rows")
    precision: float = Field(0.9, gt=0, le=1, description="each class's confidence threshold is the lowest at which "
                             "the class's validation predictions reach this precision (calibrated probabilities)")
    min_confidence: float = Field(0.5, ge=0, lt=1, description="no threshold is lower than this")
    max_per_class: int | None = Field(None, ge=1, description="rows a class may gain per round (default: the "
                                      "labelled rows per class); every class gains the same number, so the added "
                                      "rows stay balanced")
    patience: int = Field(1, ge=1, description="stop after this many rounds without a better validation metric")
    consistency: float = Field(0.0, ge=0, description="UDA-style consistency weight: KL between the prediction on "
                               "a training text and on an augmented copy of it, 0 = off (classification)")
    consistency_ops: list[Literal["swap", "delete"]] = Field(["swap", "delete"], description="graftkit's "
                                                             "augmentation operations that make the copy")
    consistency_rate: float = Field(0.1, gt=0, le=0.5, description="fraction of words changed in the copy")


#: the operations of graftkit/data/augment.py (its AUGMENT_OPS registry checks it implements exactly these)
AUGMENT_OP_NAMES = ("swap", "delete", "insert", "synonym")


class AugmentConfig(_Strict):
    """Offline EDA-style augmentation of the training split (never validation/test)."""

    copies: int = Field(1, ge=1, description="augmented variants per training example")
    ops: list[Literal[AUGMENT_OP_NAMES]] = list(AUGMENT_OP_NAMES)
    rate: float = Field(0.1, gt=0, le=0.5, description="fraction of words (characters for Chinese) changed")
    neighbours: int = Field(5, ge=1, description="synonyms: nearest embedding neighbours to pick from")
    seed: int = 13


class SearchParam(_Strict):
    """One hyper-parameter of the search space; keys are dotted config keys, e.g. train.learning_rate."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "SearchParam":
        if self.type == "categorical" and not self.choices:
            raise ValueError("categorical parameters need a non-empty 'choices' list")
        if self.type != "categorical" and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError("float/int parameters need 'low' <= 'high'")
        return self


class TuneConfig(_Strict):
    """Optuna hyper-parameter search (`graftkit tune`)."""

    trials: int = Field(20, ge=1)
    space: dict[str, SearchParam] = {}
    metric: str = Field("auto", description="validation metric to optimise (default: the task's)")
    pruner: Literal["median", "none"] = "median"
    seed: int = 42


class TrainConfig(_Strict):
    """Optimisation settings, mapped onto transformers.TrainingArguments."""

    epochs: float = Field(3, gt=0)
    max_steps: int = Field(-1, description="stop after this many steps (overrides epochs when > 0)")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    optimizer: Literal["adamw", "sgd", "adafactor"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.1, ge=0, description="< 1: fraction of total steps; >= 1: number of steps")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, ge=0)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    seed: int = 42
    metric: str = Field("auto", description="validation metric for best checkpoint / early stopping")
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    eval_strategy: Literal["epoch", "steps"] = "epoch"
    eval_steps: int = Field(200, ge=1)
    save_total_limit: int = Field(2, ge=1)
    group_by_length: bool = Field(True, description="batch similar lengths together (less padding, faster)")
    logging_steps: int = Field(10, ge=1)
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        ["tensorboard"], description="experiment trackers; wandb honours WANDB_MODE=offline and WANDB_PROJECT")
    num_workers: int = Field(0, ge=0)
    max_tokens_per_batch: int | None = Field(None, ge=8, description="form training batches by a token budget "
                                             "(rows x longest row <= this, fairseq-style) instead of batch_size "
                                             "rows; None = off (graftkit/train/batching.py)")
    compile: bool = Field(False, description="torch.compile the model (TrainingArguments.torch_compile; inductor); "
                          "pays a compile warm-up, see BENCHMARKS.md 'Training throughput'")
    threads: int | Literal["auto", "keep"] = Field("auto", description="intra-op CPU threads: auto = the physical "
                                                   "cores (an OMP_NUM_THREADS in the environment wins), keep = "
                                                   "torch's own choice, or a count >= 1")
    cache_datasets: bool = Field(False, description="keep tokenised datasets on disk by content hash "
                                 "($GRAFTKIT_CACHE or ~/.cache/graftkit): a second run on the same data skips "
                                 "tokenising")
    freeze: FreezeConfig = FreezeConfig()
    layer_lr_decay: float = Field(1.0, gt=0, le=1, description="lr of layer l = lr * decay**(layers - l); 1 = off")
    head_learning_rate: float | None = Field(None, gt=0, description="separate learning rate for the task head")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    rdrop: float = Field(0.0, ge=0, description="R-Drop weight: each batch runs twice through dropout and the "
                         "divergence of the two outputs, times this, joins the loss; 0 = off (typical 0.5-5)")
    adversarial: AdversarialConfig | None = None
    distill: DistillConfig | None = Field(None, description="knowledge distillation from a teacher run")
    strategy: Literal["standard", "few_shot", "auto", "zero_shot"] = Field(
        "standard", description="classification: standard fine-tuning, few_shot (SetFit: contrastive pairs, then a "
        "logistic-regression head), auto (few_shot below train.few_shot.auto_below rows per label), or zero_shot "
        "(no training: data.train holds label descriptions, each label scores by similarity to its own)")
    few_shot: FewShotConfig = FewShotConfig()
    self_training: SelfTrainingConfig | None = Field(None, description="self-training on unlabelled text "
                                                     "(classification, NER)")
    distributed: DistributedConfig = DistributedConfig()

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("threads must be >= 1, 'auto' or 'keep'")
        return v

    @model_validator(mode="after")
    def _few_shot_applies(self) -> "TrainConfig":
        if self.strategy in ("standard", "zero_shot") and self.few_shot != FewShotConfig():
            raise ValueError(f"few_shot applies to strategy few_shot or auto (strategy is {self.strategy}); remove "
                             "few_shot or set strategy")
        return self


class EvalConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    plots: bool = True
    save_predictions: bool = True
    calibrate: bool = Field(True, description="classification: fit temperature scaling on the validation split "
                            "(never on test) and report ECE / Brier / NLL before and after")
    slices: list[str] = Field([], description="columns of the data to report metrics per value of "
                              "(source, topic, language, ...)")
    robustness_rows: int = Field(200, ge=0, description="test rows (a seeded sample) for the robustness report at the end of "
                                 "training (0 = off); `graftkit robustness RUN --data FILE` runs it in full")


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{k}' is a value, not a section")
        node = child
    node[keys[-1]] = value


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """The mapping at the top of a YAML file; a missing file, bad YAML or a non-mapping is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return tree


def resolve_against(path: str, base: Path) -> str:
    """A relative ``path`` taken from a config file in folder ``base``, made absolute against that folder."""
    return path if Path(path).is_absolute() else str((base / path).resolve())


def _path_marker(info) -> ConfigPath | None:
    return next((m for m in info.metadata if isinstance(m, ConfigPath)), None)


def resolve_config_paths(cfg: BaseModel, base_dir: Path, from_cwd: frozenset[str] = frozenset(),
                         prefix: str = "") -> None:
    """Make every relative :class:`ConfigPath` field of ``cfg`` (nested sections included) absolute: against
    ``base_dir`` (the config file's folder), or the current folder for the dotted keys in ``from_cwd`` (given
    on the command line)."""
    for name, info in type(cfg).model_fields.items():
        value, dotted = getattr(cfg, name), f"{prefix}{name}"
        marker = _path_marker(info)
        if marker is not None and value is not None:
            base = Path.cwd() if dotted in from_cwd or name not in cfg.model_fields_set else base_dir
            resolved = [marker.resolve(v, base) for v in value] if isinstance(value, list) else \
                marker.resolve(value, base)
            object.__setattr__(cfg, name, resolved)  # no re-validation: the value only became absolute
        elif isinstance(value, BaseModel):
            resolve_config_paths(value, base_dir, from_cwd, f"{dotted}.")


def parse_overrides(items: list[str] | None) -> list[tuple[str, Any]]:
    """Turn ``["train.epochs=2", "data.train=x.csv"]`` into (key, YAML-parsed value) pairs."""
    out = []
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set '{item}': expected KEY=VALUE, e.g. --set train.epochs=2")
        key, raw = item.split("=", 1)
        out.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return out


def explain_validation(err: ValidationError, source: str, unions: dict[str, list[str]] | None = None) -> ConfigError:
    """One readable line per pydantic error, each naming the dotted key.

    ``unions`` maps a discriminated-union field (``task``) to its tags: pydantic puts the tag in the
    error location (``task.ner.crf``), which becomes "task.crf ... for task type 'ner'".
    """
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc, where = [str(p) for p in e["loc"]], ""
        for field, tags in (unions or {}).items():
            if len(loc) > 1 and loc[0] == field and loc[1] in tags:
                where = f" for {field} type '{loc[1]}'"
                loc = loc[:1] + loc[2:]
        key = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = f"unknown key{where}; check its spelling (configs/ holds a complete example of each config)"
        elif e["type"] == "missing":
            msg = f"required key is missing{where}"
        elif e["type"] == "union_tag_invalid":
            key, msg = f"{key}.type", f"unknown type {e['ctx']['tag']!r}; choose one of: {e['ctx']['expected_tags']}"
        elif e["type"] == "union_tag_not_found":
            key, msg = f"{key}.type", "required key is missing"
        else:
            msg = e["msg"] + where
        shown = e["type"] not in ("missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found")
        lines.append(f"  - {key}: {msg}" + (f" (got {e['input']!r})" if shown else ""))
    return ConfigError("\n".join(lines))
