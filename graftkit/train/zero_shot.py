"""``train.strategy: zero_shot``: a classification run built from label names and descriptions alone.

``data.train`` holds no labelled examples but one or more descriptions per label (``label`` column: the label,
``text`` column: a short description). Nothing is trained: the classifier's features of each description (the
input of its output layer, as few-shot reads them) are averaged per label, normalised, and become the rows of the
output layer, so an input scores each label by cosine similarity to that label's descriptions. ``data.validation``
and ``data.test``, when given, are ordinary labelled rows: they are only evaluated (validation also fits the
temperature, which leaves the predicted label unchanged). The run folder is an ordinary classification run; its
card says it was built without training.
"""
from __future__ import annotations

import numpy as np
import torch

from graftkit.data.dataset import Example, Splits
from graftkit.errors import ConfigError
from graftkit.evaluate.evaluator import finalize_run
from graftkit.io import publish_dir, write_json
from graftkit.modeling.features import FeatureTap, output_layer
from graftkit.modeling.load import load_pretrained
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import DecodesLogits, LearnsFromFewLabels
from graftkit.tasks.run_config import RunConfig
from graftkit.train.arguments import selection_metric
from graftkit.train.few_shot import FIXED_SETTINGS, StrategyChoice
from graftkit.train.keys import refuse_unsupported
from graftkit.train.threads import Threads

COMMAND = "train.strategy: zero_shot"
#: nothing trains, so only the model to load is read
ZERO_SHOT_KEYS = ("model.name_or_path", "model.revision", "model.keep_layers", "train.strategy", "train.threads")
CHOICE = StrategyChoice("zero_shot", "train.strategy: zero_shot")


def check_zero_shot(cfg: RunConfig, task: Task) -> LearnsFromFewLabels:
    """Refuse, in one line and before any work, a setting a zero-shot run does not apply."""
    learner = task.capability(LearnsFromFewLabels, COMMAND)
    refuse_unsupported(cfg, task, ZERO_SHOT_KEYS, {}, "nothing: zero_shot builds its head from label descriptions",
                       FIXED_SETTINGS)
    if cfg.data.hub is not None or not cfg.data.train:
        raise ConfigError("data.train: zero_shot reads label descriptions from a file (columns label and text); "
                          "data.hub is not read")
    return learner


def read_splits(cfg: RunConfig, task: Task) -> Splits:
    """The descriptions (as the training split) and the labelled validation and test files, when given."""
    read = {name: task.read(path, cfg.data) if path else ([], 0)
            for name, path in (("train", cfg.data.train), ("validation", cfg.data.validation),
                               ("test", cfg.data.test))}
    splits = Splits(read["train"][0], read["validation"][0], read["test"][0],
                    dropped={name: n for name, (_, n) in read.items() if n},
                    notes=[f"zero_shot: {cfg.data.train} holds label descriptions, not training examples"])
    task.fit(splits.train)
    task.check(splits.validation)
    task.check(splits.test)
    return splits


def description_features(task: Task, model, tokenizer, rows: list[Example], max_length: int) -> np.ndarray:
    """The features the output layer reads, one row per description."""
    decoding = task.capability(DecodesLogits, COMMAND)
    features, _ = decoding.encode([task.input_of(e) for e in rows], tokenizer, max_length)
    model.eval()
    with FeatureTap(model) as tap, torch.inference_mode():
        model(**{k: torch.as_tensor(v) for k, v in features.items()})
    return tap.value.float().cpu().numpy()


def train_zero_shot(task: Task, session):
    """Build, save and evaluate a zero-shot run in the run's in-progress folder; returns the run folder."""
    cfg, log = session.cfg, session.log
    learner = check_zero_shot(cfg, task)
    splits = read_splits(cfg, task)
    threads = Threads(cfg.train.threads, cfg.train.num_workers)  # before the model loads
    tokenizer, model = load_pretrained(cfg.model, task.model_class, learner.model_kwargs(), cfg.data.max_length)
    weight, bias = learner.zero_shot_head(description_features(task, model, tokenizer, splits.train,
                                                               cfg.data.max_length), splits.train)
    layer = output_layer(model)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    run, _ = session.prepare_run_dir()  # only now: a refusal above leaves nothing behind
    log(f"examples: descriptions={len(splits.train)} validation={len(splits.validation)} test={len(splits.test)}")
    log(CHOICE.line())
    session.record_setup(run, splits, model, [threads, CHOICE])
    staging = run.path / ".staging-model"
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    publish_dir(staging, run.path)
    run.write_task_state(task.name, task.state())
    write_json(run.history, [])
    run.write_test_split(splits.test)
    finalize_run(run, cfg, splits, {}, selection_metric(cfg, task), log=log, strategy=CHOICE.summary())
    return run
