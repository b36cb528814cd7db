"""Train a decoder with trl's DPOTrainer or KTOTrainer inside graftkit's run folder.

The starting checkpoint (``model.name_or_path``: a hub decoder, a causal_lm run folder, or a LoRA causal_lm run,
merged into its base) is also the reference model: loaded once more, frozen and never trained; with ``peft:``
there is no second copy: trl computes the reference with the adapter disabled. graftkit's TrainingArguments
mapping is carried over to trl's config; evaluation afterwards goes through graftkit's Generator and the task's
report, like every generative run (BLEU, ROUGE and, for data-to-text, the slot error rate), and the starting
model's generations, generated before training, are scored the same way (graftkit/tasks/preference/report.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

from graftkit.data.dataset import Splits, load_splits
from graftkit.errors import ConfigError
from graftkit.io import publish_dir, write_json
from graftkit.modeling.load import resolve_model_path
from graftkit.modeling.peft import finish_adapter_save, load_adapter_model, peft_config
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.preference.chat import check_template
from graftkit.tasks.preference.report import preference_report, start_generations
from graftkit.tasks.preference.rows import check_prompt_lengths, trl_columns

TRAINERS = {"dpo": (DPOConfig, DPOTrainer), "kto": (KTOConfig, KTOTrainer)}


def load_tokenizer(cfg):
    """The starting checkpoint's tokenizer (EOS pads when it has no pad token, as trl does)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path), revision=cfg.model.revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_start(cfg) -> bool:
    """Whether the starting checkpoint is an adapter run; refused (ConfigError) when ``peft:`` would stack a new
    adapter on it. Checked before anything loads from it."""
    adapter = (Path(resolve_model_path(cfg.model.name_or_path)) / "adapter_config.json").is_file()
    if adapter and cfg.peft is not None:
        raise ConfigError(f"model.name_or_path: '{cfg.model.name_or_path}' is an adapter run, whose merged weights "
                          "exist nowhere on disk for a new adapter to build on; run `graftkit merge` on it and start "
                          "from its merged/ folder, or remove peft: to train the merged model in full")
    return adapter


def load_start(cfg) -> tuple[object, object | None]:
    """(policy, reference) from the starting checkpoint; no reference with ``peft:`` (trl disables the adapter
    instead)."""
    path = resolve_model_path(cfg.model.name_or_path)
    adapter = check_start(cfg)

    def load():
        if adapter:  # peft froze the base it merged into: the policy trains every weight again
            return load_adapter_model(path, AutoModelForCausalLM, merge=True).requires_grad_(True)
        return AutoModelForCausalLM.from_pretrained(path, revision=cfg.model.revision)

    reference = None if cfg.peft is not None else load().eval().requires_grad_(False)
    return load(), reference


def trl_arguments(session, run: RunFolder, task, has_eval: bool):
    """graftkit's TrainingArguments carried over to trl's config of ``task.task_cfg.method``."""
    t = task.task_cfg
    base = session.training_arguments(run, "loss", has_eval)
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    # trl batches by its own columns (no input_ids to group by length); KTO estimates its KL term against the
    # neighbours of a fixed-order batch, so it reads the (pre-shuffled) rows in order; the run keeps its last weights
    order = "sequential" if t.method == "kto" else "random"
    kwargs.update(train_sampling_strategy=order)
    if not (has_eval and session.cfg.train.early_stopping):  # without early stopping the run keeps its last weights
        kwargs.update(load_best_model_at_end=False, metric_for_best_model=None)
    kwargs.pop("remove_unused_columns")  # trl's own default: its trainers choose the columns they keep
    extra = {k: v for k, v in (("loss_type", t.loss_type), ("loss_weights", t.loss_weights)) if v}
    return TRAINERS[t.method][0](**kwargs, beta=t.beta, max_length=session.cfg.data.max_length,
                                 **extra)


def save_model(trainer, tokenizer, run: RunFolder, start: str) -> None:
    """The trained weights (an adapter alone with ``peft:``) and the tokenizer into the run folder."""
    staging = run.path / ".staging-model"
    trainer.save_model(str(staging))
    tokenizer.save_pretrained(str(staging))
    finish_adapter_save(trainer.model, staging, start)  # adapter runs: the base config + decoding settings
    (staging / "training_args.bin").unlink(missing_ok=True)
    publish_dir(staging, run.path)


def read_checked(task, cfg) -> tuple[Splits, object]:
    """The splits and the starting tokenizer, every row checked before the run folder exists (a refused row
    leaves nothing to resume): one row shape (text or chat) in every split, a chat template for chat pairs, and
    prompts that leave room for a completion.

    Raises:
        DataError: naming the file and line of the first row refused.
    """
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                         from_rows=task.examples_from_rows)
    task.fit(splits.train)
    task.check(splits.validation + splits.test)
    check_start(cfg)  # before the tokenizer: an adapter run to stack peft on is refused first
    tokenizer = load_tokenizer(cfg)
    check_template(splits.train, tokenizer, cfg.model.name_or_path)
    check_prompt_lengths(splits.train + splits.validation, tokenizer, cfg.data.max_length, task.task_cfg.prompt_column)
    return splits, tokenizer


def train_preference(task, session) -> RunFolder:
    """Train with DPO or KTO, evaluate the preference on validation and the generations on validation and test,
    and write a complete run folder.

    Raises:
        ConfigError: a LoRA run to start from together with ``peft:``.
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    cfg, log, method = session.cfg, session.log, task.task_cfg.method
    splits, tokenizer = read_checked(task, cfg)
    run, checkpoint = session.prepare_run_dir()
    for note in splits.notes:
        log(note)
    log(f"examples: train={len(splits.train)} validation={len(splits.validation)} test={len(splits.test)}")
    # train.threads before the models load; early stopping on trl's validation loss, the best weights kept
    shared = session.shared_components(run) + session.early_stopping(bool(splits.validation))
    policy, reference = load_start(cfg)
    policy.generation_config = task.capability(Generates, "train").generation_config(tokenizer, policy.config)
    session.record_setup(run, splits, policy, shared)
    validation = Dataset.from_dict(trl_columns(splits.validation, method)) if splits.validation else None
    stop = session.stop_callback()
    trainer = TRAINERS[method][1](
        model=policy, ref_model=reference, args=trl_arguments(session, run, task, validation is not None),
        train_dataset=Dataset.from_dict(trl_columns(splits.train, method)).shuffle(seed=cfg.train.seed),
        eval_dataset=validation,
        processing_class=tokenizer, peft_config=peft_config(cfg.peft, policy, 0) if cfg.peft else None,
        callbacks=[stop, *(cb for c in shared for cb in c.callbacks()), *session.extra_callbacks])
    # the starting model's generations: on the trainer's device, before a step (peft's new adapter changes nothing)
    before = start_generations(task, trainer.model, tokenizer, splits, policy.generation_config)
    result = session.train_until_stopped(trainer, stop, checkpoint, run)
    train_metrics = {**result.metrics, **preference_report(task, trainer, reference, tokenizer, splits, before,
                                                            cfg.data.max_length, policy.generation_config)}
    if "preference_validation" in train_metrics:
        log("validation preference: " + ", ".join(f"{k}={v:.4f}" for k, v in
                                                   train_metrics["preference_validation"].items()))
    save_model(trainer, tokenizer, run, cfg.model.name_or_path)
    write_json(run.history, trainer.state.log_history)
    run.write_task_state(task.name, task.state())
    session.finish(task, run, splits, train_metrics)
    return run
