"""Task-adaptive pre-training (TAPT; Gururangan et al., 2020): masked-LM on the task's own training
text before fine-tuning on its labels.

``graftkit pretrain CONFIG`` runs only that first stage; ``graftkit train CONFIG`` with a
``pretrain:`` section runs both. The first stage is an ordinary ``task.type: mlm`` run named
``<name>-pretrain`` next to the task's run: it starts from ``model`` (with the same
``model.extend_vocab``, so the same tokens are added), trains on the training split's texts
(never validation or test; plus any ``pretrain.texts`` files), and is resumable like any run.
The fine-tuning run then starts from that folder (``model.name_or_path``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from graftkit.data.dataset import read_documents
from graftkit.io import write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.vocab import training_texts
from graftkit.tasks.base import Task
from graftkit.tasks.run_config import RunConfig, config_from_dict
from graftkit.train.session import differing_section
from graftkit.train.trainer import check_settings as check_path_settings
from graftkit.train.trainer import prepare, train

PRETRAIN_SUFFIX = "-pretrain"
#: the ``pretrain:`` keys this stage consumes (``pretrain_config`` and ``pretrain``), for every training path
PRETRAIN_KEYS = ("pretrain.epochs", "pretrain.max_steps", "pretrain.batch_size", "pretrain.learning_rate",
                 "pretrain.mlm_probability", "pretrain.whole_word_mask", "pretrain.validation", "pretrain.texts")


def pretrain_run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.output_dir) / f"{cfg.name}{PRETRAIN_SUFFIX}"


def _texts(cfg: RunConfig) -> list[str]:
    """The training split's texts (and text pairs), one per line: what the masked LM reads."""
    _, splits = prepare(cfg)
    return [" ".join(t.split()) for t in training_texts(splits.train)]  # one document per line: inner newlines become spaces


def pretrain_config(cfg: RunConfig, text_file: Path) -> RunConfig:
    """The ``task.type: mlm`` run that pre-trains ``cfg``'s model on ``text_file``."""
    p = cfg.pretrain
    tree = cfg.model_dump(mode="json", exclude={"pretrain", "task", "peft", "augment", "tune"})
    tree["name"] = f"{cfg.name}{PRETRAIN_SUFFIX}"
    tree["data"] = {"train": str(text_file), "max_length": cfg.data.max_length,
                    "split": {"validation": p.validation, "test": 0.0, "seed": cfg.data.split.seed,
                              "stratify": False}}
    tree["task"] = {"type": "mlm", "mlm_probability": p.mlm_probability, "whole_word_mask": p.whole_word_mask}
    tree["model"]["keep_layers"] = None  # the cut (if any) happens when fine-tuning starts
    train = tree["train"]
    train.update(epochs=p.epochs, max_steps=p.max_steps, learning_rate=p.learning_rate, batch_size=p.batch_size,
                 metric="loss", distill=None, rdrop=0.0, adversarial=None, label_smoothing=0.0,
                 freeze={"embeddings": False, "layers": 0}, head_learning_rate=None, early_stopping=None)
    return config_from_dict(tree, f"{cfg.name} pretrain")


def finetune_config(cfg: RunConfig, pretrained: Path) -> RunConfig:
    """``cfg`` starting from the pre-trained folder (no second pre-training)."""
    tree = cfg.model_dump(mode="json")
    tree["pretrain"] = None
    # absolute: the fine-tuned (or adapter) run records it as its base, and is loaded from any directory
    tree["model"].update(name_or_path=str(Path(pretrained).resolve()), revision=None)
    return config_from_dict(tree, cfg.name)


def pretrain(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
             log: Callable[[str], None] = print) -> RunFolder:
    """Run (or resume, or reuse a finished) pre-training stage of ``cfg``; returns its run folder.

    A finished stage is reused only while it would be trained the same way today: the same stage config and
    the same texts. Otherwise it is trained again (the log says what changed).
    """
    run = RunFolder(pretrain_run_dir(cfg))
    text_file = Path(cfg.output_dir) / f"{cfg.name}{PRETRAIN_SUFFIX}.train.txt"
    texts = _texts(cfg)
    extra = [Path(f) for f in cfg.pretrain.texts]
    corpus = "\n".join(texts + [_read_extra(f) for f in extra]) + "\n"
    stage_cfg = pretrain_config(cfg, text_file)
    if run.is_complete and not overwrite:
        changed = stale_reason(run, stage_cfg, text_file, corpus)
        if changed is None:
            log(f"pretrain: reusing the finished pre-training run {run.path}")
            return run
        log(f"pretrain: {run.path} was trained with {changed}; training it again")
        overwrite = True
    write_text(text_file, corpus)
    log(f"pretrain: masked-LM on {len(texts)} training texts" + (f" and {len(extra)} text files" if extra else "")
        + f" -> {run.path}")
    return train(stage_cfg, resume=resume, overwrite=overwrite, log=log)


def stale_reason(run: RunFolder, stage_cfg: RunConfig, text_file: Path, corpus: str) -> str | None:
    """What differs between a finished pre-training run and the one ``stage_cfg`` on ``corpus`` would train
    (a config section, or the texts); None when it can be reused."""
    section = differing_section(run.config.read_text(encoding="utf-8"), stage_cfg, str(run.config))
    if section is not None:
        return f"another '{section}' section"
    if not text_file.is_file() or text_file.read_text(encoding="utf-8") != corpus:
        return "other training texts"
    return None


def _read_extra(path: Path) -> str:
    return "\n".join(d.text for d in read_documents(path))


def check_settings(cfg: RunConfig) -> Task:
    """``graftkit train``'s check, before any work: every key ``cfg`` sets is honoured by this stage or by the
    task's training path, else one line names it (``graftkit.train.trainer.check_settings``)."""
    return check_path_settings(cfg, stage_keys=PRETRAIN_KEYS)


def train_with_pretrain(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
                        extra_callbacks: list | None = None, log: Callable[[str], None] = print) -> RunFolder:
    """``graftkit train`` for a config with a ``pretrain:`` section: pre-train, then fine-tune from it."""
    check_settings(cfg)
    if cfg.pretrain is None:
        return train(cfg, resume=resume, overwrite=overwrite, extra_callbacks=extra_callbacks, log=log)
    pre = pretrain(cfg, resume=resume, overwrite=overwrite, log=log)
    log(f"fine-tuning from {pre.path}")
    return train(finetune_config(cfg, pre.path), resume=resume, overwrite=overwrite,
                 extra_callbacks=extra_callbacks, log=log)
