"""CLI commands over finished runs: `merge`, `ensemble`, and the search `tune` (registered in graftkit/cli/main.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


def _log(msg: str) -> None:
    err.print(msg, highlight=False, markup=False)


def merge_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run trained with a peft adapter."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Where to write (default RUN_DIR/merged)."),
):
    """Merge a LoRA/AdaLoRA/IA3 adapter into its base model: a full model plain transformers loads."""
    from graftkit.export.merge import merge_run

    path = merge_run(run_dir, out_dir)
    out.print(f"[green]merged:[/] {path}")


def ensemble_cmd(
    run_dirs: List[Path] = typer.Argument(..., help="Two or more finished runs trained with the same labels."),
    out_dir: Path = typer.Option(..., "--out", help="The ensemble run folder to create."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    combine: Optional[str] = typer.Option(
        None, "--combine", help="mean (average probabilities) or vote (NER: entity-span majority vote); "
        "default: vote for NER, mean otherwise."),
    vote: float = typer.Option(0.5, "--vote", help="With vote: keep a span more than this share of members "
                               "predict (0.5: strict majority)."),
):
    """Combine several runs (mean probabilities, or entity-span votes for NER); evaluates on the test split
    and is servable like any run."""
    from graftkit.train.ensemble import build_ensemble

    res = build_ensemble(run_dirs, out_dir, overwrite=overwrite, log=_log, combine=combine, vote=vote)
    table = Table(title="test metrics")
    table.add_column("run")
    keys = [k for k, v in res.get("test", {}).items() if isinstance(v, float) and k != "predict_seconds"]
    for k in keys:
        table.add_column(k, justify="right")
    for name, m in res["members"].items():
        table.add_row(name, *(f"{m.get(k, float('nan')):.4f}" for k in keys))
    if "test" in res:
        table.add_row(f"[bold]{out_dir}[/]", *(f"{res['test'][k]:.4f}" for k in keys))
    out.print(table)


def tune_cmd(
    config: Path = typer.Argument(..., help="YAML config with a tune: section (search space)."),
    trials: Optional[int] = typer.Option(None, "--trials", "-n",
                                         help="Total finished trials wanted (default tune.trials)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a key, e.g. --set train.epochs=2."),
):
    """Hyper-parameter search with Optuna (TPE + median pruning); rerun to resume the study."""
    import csv

    from graftkit.tasks.run_config import load_config
    from graftkit.train.tune import tune

    summary = tune(load_config(config, set_), trials, log=_log)
    with open(summary["results"], encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    table = Table(title=f"{summary['trials']} trials, best {summary['metric']}={summary['best_value']:.4f}")
    for c in rows[0]:
        table.add_column(c)
    for r in rows[1:]:
        table.add_row(*r)
    out.print(table)
    out.print(f"[green]best config:[/] {summary['best_config']}")
