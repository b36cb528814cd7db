"""`graftkit label`: active learning over a run folder (select the next rows to label, import the answers)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console

out = Console()


def label_app(wrap: Callable) -> typer.Typer:
    """The `graftkit label` group: select, import, page."""
    grp = typer.Typer(no_args_is_help=True, help="Active learning: pick the next rows to label, merge the answers.")
    grp.command("select")(wrap(select_cmd))
    grp.command("import")(wrap(import_cmd))
    grp.command("page")(wrap(page_cmd))
    grp.command("loop")(wrap(loop_cmd))
    return grp


def select_cmd(
    run: Path = typer.Argument(..., help="A finished run folder."),
    pool: Optional[Path] = typer.Option(None, help="Unlabelled rows to choose from (the run's text columns)."),
    k: int = typer.Option(20, "--k", help="How many rows to pick."),
    strategy: str = typer.Option("entropy", help="entropy | margin (uncertainty), diversity (k-center greedy on "
                                 "the run's features), hybrid (uncertain, then diverse), random (a seeded sample), "
                                 "recheck (cleanlab over the labelled rows)."),
    labelled: Optional[Path] = typer.Option(None, help="The labelled file (default: the run's data.train)."),
    output: Path = typer.Option(Path("to_label.csv"), "--out", help="Where the rows to answer go (CSV)."),
    folds: int = typer.Option(3, help="recheck: cross-validation folds."),
):
    """Pick the next K rows to label from POOL (or, with --strategy recheck, labelled rows to look at again)."""
    from graftkit.apps.labelling.answers import write_selection
    from graftkit.apps.labelling.pool import RunParts
    from graftkit.apps.labelling.select import select

    chosen = select(str(run), k, strategy, str(pool) if pool else None, str(labelled) if labelled else None,
                    folds=folds, log=out.print)
    write_selection(chosen, output, RunParts.open(run).cfg.data)
    into = f" --labelled {labelled}" if labelled else ""
    out.print(f"{chosen.note}\n{len(chosen.candidates)} rows ({chosen.strategy}) written to {output}; fill the label "
              f"column (or: graftkit label page {output} {run}), then: graftkit label import {output} {run}{into}",
              soft_wrap=True)


def import_cmd(
    answers: Path = typer.Argument(..., help="The answered selection file (graftkit label select --out)."),
    run: Path = typer.Argument(..., help="The run the rows were selected with (its labels and test split)."),
    labelled: Optional[Path] = typer.Option(None, help="The labelled file to merge into (default: data.train)."),
):
    """Merge the answered rows into the labelled file; refuses unknown labels, rows already labelled or in the
    test split, and rows answered twice, by file and line."""
    from graftkit.apps.labelling.answers import import_answers

    done = import_answers(str(answers), run, str(labelled) if labelled else None)
    out.print(f"merged {done['merged']} rows into {done['into']} ({done['unanswered']} rows not answered yet)",
              soft_wrap=True)


def page_cmd(
    sheet: Path = typer.Argument(..., help="The selection file to answer (graftkit label select --out)."),
    run: Path = typer.Argument(..., help="The run the rows were selected with (its labels)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (the page has no login: keep it local)."),
    port: int = typer.Option(8765),
):
    """Answer SHEET in the browser: the model's suggestion preselected, keyboard shortcuts, undo, progress; every
    answer is saved to SHEET at once (then: graftkit label import SHEET RUN)."""
    import uvicorn

    from graftkit.apps.labelling.page import labelling_app

    app = labelling_app(sheet, run)
    out.print(f"labelling {sheet} at http://{host}:{port}/ (Ctrl+C to stop; answers are saved as you go)",
              soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def loop_cmd(
    config: Path = typer.Argument(..., help="The run config; its data.train is the labelled file that grows."),
    pool: Path = typer.Option(..., help="Unlabelled rows to choose from (the run's text columns)."),
    k: int = typer.Option(20, "--k", help="Rows to label per round."),
    strategy: str = typer.Option("hybrid", help="entropy | margin | diversity | hybrid | random (see label select)."),
    rounds: int = typer.Option(1, min=1, help="Rounds of train, select, answer, merge."),
    page: bool = typer.Option(False, "--page", help="Answer each round in the labelling page (served until done)."),
    oracle: Optional[Path] = typer.Option(None, help="Answer from this file of gold labels (a simulation)."),
    output: Path = typer.Option(Path("label_loop"), "--out", help="Folder for the sheets, loop.json and the curve."),
    host: str = typer.Option("127.0.0.1", help="--page: address to listen on."),
    port: int = typer.Option(8765, help="--page: port."),
    seed: int = typer.Option(0, help="random strategy: the seed of the first round."),
):
    """Retrain on the labelled file, select the next K pool rows, get them answered (--page or --oracle), merge
    them into data.train, and again; the learning curve goes to OUT/learning_curve.png."""
    from graftkit.apps.labelling.loop import LoopSettings, label_loop

    settings = LoopSettings(str(pool), k, strategy, rounds, str(oracle) if oracle else None, page, host, port, seed)
    record = label_loop(config, output, settings, log=out.print)
    last = record["rounds"][-1] if record["rounds"] else None
    if last is not None:
        out.print(f"{len(record['rounds'])} rounds recorded in {output / 'loop.json'}; last: {last['labelled']} "
                  f"labelled rows, {last['split']} {last['metric']}={last['value']}", soft_wrap=True)
