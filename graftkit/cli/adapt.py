"""Domain adaptation commands: `graftkit pretrain` (task-adaptive masked-LM) and `graftkit vocab`
(what `model.extend_vocab` would add, and the training text's [UNK] rate)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def pretrain_cmd(
    config: Path = typer.Argument(..., help="A task config (its `pretrain:` section, or the defaults)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a key, e.g. --set pretrain.epochs=3."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished pre-training run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a finished pre-training run."),
):
    """Masked-LM on the training text of CONFIG (task-adaptive pre-training) into runs/<name>-pretrain.

    Fine-tune from it with `--set model.name_or_path=runs/<name>-pretrain`, or put a `pretrain:`
    section in CONFIG and `graftkit train` runs both stages.
    """
    from graftkit.config import PretrainConfig
    from graftkit.tasks.run_config import load_config
    from graftkit.train.pretrain import pretrain

    cfg = load_config(config, set_)
    if cfg.pretrain is None:
        cfg = cfg.model_copy(update={"pretrain": PretrainConfig()})
    err.print(f"[bold]graftkit pretrain[/] {cfg.name}")
    run = pretrain(cfg, resume=resume, overwrite=overwrite, log=lambda m: err.print(m, highlight=False))
    out.print(f"[green]done:[/] {run.path}")


def vocab_cmd(
    config: Path = typer.Argument(..., help="A task config."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a key."),
    show: int = typer.Option(30, help="How many of the tokens to list."),
):
    """Show the training text's [UNK] rate and the tokens `model.extend_vocab` would add (nothing is trained)."""
    from transformers import AutoTokenizer

    from graftkit.modeling.load import resolve_model_path
    from graftkit.modeling.vocab import auto_tokens, read_token_file, training_texts, unk_rate
    from graftkit.tasks.run_config import load_config
    from graftkit.train.trainer import prepare

    cfg = load_config(config, set_)
    _, splits = prepare(cfg)
    texts = training_texts(splits.train)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path), revision=cfg.model.revision)
    settings = cfg.model.extend_vocab
    source = settings.source if settings.source != "off" else "auto"
    tokens = auto_tokens(tokenizer, texts, settings) if source == "auto" else read_token_file(source)
    fresh = [t for t in tokens if t not in tokenizer.get_vocab()]
    out.print(f"[UNK] rate of the training text: {100 * unk_rate(tokenizer, texts):.2f}% ({len(texts)} texts)")
    out.print(f"extend_vocab {source}: {len(fresh)} new tokens: {' '.join(fresh[:show])}"
              + (" ..." if len(fresh) > show else ""))
