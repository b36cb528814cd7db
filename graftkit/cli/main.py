"""Command line: thin typer commands over library functions (parse, build, run).

Commands import the library inside their bodies on purpose: `graftkit --help` and typos in
arguments must answer at once, without loading torch and transformers (several seconds).
"""
from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from graftkit.cli.adapt import pretrain_cmd, vocab_cmd
from graftkit.cli.apps import assistant_app, monitor_app, recommend_cmd
from graftkit.cli.export import export_cmd, prune_cmd
from graftkit.cli.generate import generate_cmd, pairs_cmd
from graftkit.cli.label import label_app
from graftkit.cli.retrieval import answer_cmd, index_cmd, search_cmd
from graftkit.cli.runs import ensemble_cmd, merge_cmd, tune_cmd
from graftkit.cli.serve import serve_cmd
from graftkit.cli.studio import studio_cmd
from graftkit.cli.trust import explain_cmd, inspect_cmd, push_cmd, robustness_cmd
from graftkit.errors import GraftkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)


@app.callback()
def options(ctx: typer.Context,
            verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' own logs, warnings "
                                         "and progress bars (transformers, datasets, ...) besides graftkit's.")):
    """Fine-tune pretrained transformers on your own labelled data: train → evaluate → predict."""
    if ctx.invoked_subcommand is None or ctx.resilient_parsing:
        return
    from graftkit.progress import quiet_libraries

    # held for the whole command: the libraries' per-file bars and repeated warnings stay off unless
    # --verbose, and are restored when the command ends
    ctx.with_resource(quiet_libraries(verbose))


def friendly(fn):
    """Print GraftkitError as one readable message (exit 2) instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GraftkitError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
    return wrapper


@app.command()
@friendly
def train(
    config: Path = typer.Argument(..., help="YAML config (see configs/)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a key, e.g. --set train.epochs=2 "
                                             "(repeatable; values are YAML)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished run from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder of the same name "
                                   "(once the new run is complete)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes on this machine (torchrun; "
                              "gloo on CPU, nccl on GPU). train.batch_size is per process."),
):
    """Train a model from CONFIG and write a self-describing run folder (model, metrics, plots, card)."""
    from graftkit.tasks.run_config import load_config
    from graftkit.train.pretrain import check_settings
    from graftkit.train.pretrain import train_with_pretrain as run_train  # plain train() without a pretrain: section

    cfg = load_config(config, set_)
    check_settings(cfg)  # a setting the task's training does not apply: one line, before anything is printed
    if nproc > 1:
        from graftkit.train.distributed import launch_train

        err.print(f"[bold]graftkit train[/] {cfg.name} → {cfg.run_dir} in {nproc} processes")
        return launch_train(config, set_, nproc, resume=resume, overwrite=overwrite)  # rank 0 reports "done"
    from graftkit.train.distributed import is_main_process

    main = is_main_process()  # under torchrun only rank 0 talks
    if main:
        err.print(f"[bold]graftkit train[/] {cfg.name} → {cfg.run_dir}")
    started = time.monotonic()
    run = run_train(cfg, resume=resume, overwrite=overwrite, log=lambda m: err.print(m, highlight=False, soft_wrap=True))
    if main:
        out.print(run_summary(run, time.monotonic() - started))
        out.print(f"[green]done:[/] {run.path}")


def run_summary(run, seconds: float) -> Table:
    """The final table of a training run: its headline metrics per split, where it is, how long it took."""
    metrics = run.read_metrics()
    table = Table(title=f"{run.path.name}: {run.task_state().get('task', '')} run, {seconds:.0f} s")
    table.add_column("split")
    names = [k for k, v in (metrics.get("test") or metrics.get("validation") or {}).items()
             if isinstance(v, float) and not k.endswith("seconds")][:6]
    for name in names:
        table.add_column(name, justify="right")
    for split in ("validation", "test"):
        if isinstance(metrics.get(split), dict):
            table.add_row(split, *(f"{metrics[split].get(n, float('nan')):.4f}" for n in names))
    table.caption = f"{run.path}  (metrics.json, README.md, plots/)"
    return table


@app.command()
@friendly
def evaluate(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    data: Path = typer.Option(..., "--data", "-d", help="Labelled file (same columns as training unless overridden)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Report folder (default RUN_DIR/eval/<file stem>)."),
    text_column: Optional[str] = typer.Option(None, help="Override the text column name."),
    label_column: Optional[str] = typer.Option(None, help="Override the label column name."),
    encoding: Optional[str] = typer.Option(None, help="Override the file encoding."),
    backend: str = typer.Option("torch", help="Inference backend (torch; onnx after export)."),
    precision: str = typer.Option("fp32", help="--backend onnx: the fp32 or the int8 graph (int8 after "
                                  "`graftkit export --quantize`)."),
):
    """Report metrics of a run on any labelled file; writes predictions, errors and plots."""
    from graftkit.evaluate.evaluator import evaluate_file
    from graftkit.progress import progress_bar

    res = evaluate_file(run_dir, data, out_dir, backend=backend, backend_kwargs=backend_options(backend, precision),
                        progress_factory=progress_bar,
                        text_column=text_column, label_column=label_column, encoding=encoding)
    table = Table(title=f"{run_dir} on {data}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in res.items():
        if isinstance(v, (int, float)):
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    out.print(table)
    if "per_class" in res:
        pc = Table(title="per class")
        for c in ("label", "precision", "recall", "f1-score", "support"):
            pc.add_column(c, justify="right" if c != "label" else "left")
        for lab, m in res["per_class"].items():
            pc.add_row(lab, *(f"{m[k]:.3f}" for k in ("precision", "recall", "f1-score")), str(int(m["support"])))
        out.print(pc)


@app.command()
@friendly
def predict(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify (or use --input)."),
    pair: Optional[List[str]] = typer.Option(None, "--pair", "-p", help="Pair runs: the second text of each "
                                             "pair, one --pair per text, in order."),
    input_: Optional[Path] = typer.Option(None, "--input", "-i", help="File of inputs: .txt (one per line), "
                                          ".jsonl/.csv with the run's text column."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write JSON Lines here (default: stdout)."),
    batch_size: int = typer.Option(64, help="Inference batch size."),
    backend: str = typer.Option("torch", help="Inference backend (torch; onnx after export)."),
    precision: str = typer.Option("fp32", help="--backend onnx: the fp32 or the int8 graph (int8 after "
                                  "`graftkit export --quantize`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="--output exists: start it over instead of "
                                   "continuing it (continuing needs its resume record to match run and input)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip and count malformed input lines "
                                      "instead of stopping at the first."),
    ray: bool = typer.Option(False, "--ray", help="Run the Predictor as Ray Data actors; --output is a folder "
                             "of JSON Lines shards + manifest.json (needs the 'ray' extra)."),
    ray_address: Optional[str] = typer.Option(None, help="--ray: join this cluster ('auto', ray://HOST:PORT) "
                                              "instead of starting a local one."),
    ray_workers: int = typer.Option(2, min=1, help="--ray: Predictor actors."),
):
    """Predict for texts given on the command line or in a file (labels, entities, values, generated text or
    vectors, whatever the run's task predicts)."""
    from graftkit.inference.runs import open_run
    from graftkit.progress import progress_bar

    if not texts and not input_:
        raise GraftkitError("give texts as arguments or a file with --input")
    if ray:
        if not (input_ and output):
            raise GraftkitError("--ray needs --input FILE and --output FOLDER")
        from graftkit.inference.ray_predict import predict_ray

        manifest = predict_ray(run_dir, input_, output, batch_size, ray_workers, backend, ray_address, overwrite,
                               backend_kwargs=backend_options(backend, precision))
        err.print(f"[green]{manifest['rows']} predictions[/] → {output} ({len(manifest['shards'])} shards)")
        return
    predictor = open_run(run_dir, backend, **backend_options(backend, precision))
    if input_:
        n = predictor.predict_file(input_, output, batch_size, progress_factory=progress_bar, overwrite=overwrite,
                                   skip_invalid=skip_invalid, log=lambda m: err.print(m, highlight=False,
                                                                                      soft_wrap=True))
        err.print(f"[green]{n} predictions[/] → {output or 'stdout'}")
        return
    from graftkit.inference.predict_file import pair_inputs

    inputs = pair_inputs(list(texts), pair, predictor.input_columns()[1])
    lines = [json.dumps({"input": t, **p.to_dict()}, ensure_ascii=False) + "\n"
             for t, p in zip(inputs, predictor.predict(inputs, batch_size))]
    if output:
        from graftkit.io import write_text

        write_text(output, "".join(lines))
    else:
        sys.stdout.write("".join(lines))


def backend_options(backend: str, precision: str) -> dict:
    """Predictor keyword arguments of ``--backend``/``--precision``; a precision the backend lacks is an error."""
    if precision not in ("fp32", "int8"):
        raise GraftkitError(f"--precision must be fp32 or int8, not '{precision}'")
    if backend != "onnx":
        if precision != "fp32":
            raise GraftkitError(f"--precision {precision} needs --backend onnx (the torch backend runs fp32)")
        return {}
    return {"precision": precision}


@app.command()
@friendly
def info(run_dir: Path = typer.Argument(..., help="A run folder.")):
    """Show what a run folder holds: task, labels, base model, data, metrics, files."""
    from graftkit.inference.info import describe

    out.print(describe(run_dir))


app.command("export")(friendly(export_cmd))
app.command("prune")(friendly(prune_cmd))
app.command("serve")(friendly(serve_cmd))
app.command("index")(friendly(index_cmd))
app.command("search")(friendly(search_cmd))
app.command("answer")(friendly(answer_cmd))
app.command("merge")(friendly(merge_cmd))
app.command("ensemble")(friendly(ensemble_cmd))
app.command("tune")(friendly(tune_cmd))
app.command("pretrain")(friendly(pretrain_cmd))
app.command("vocab")(friendly(vocab_cmd))
app.command("generate")(friendly(generate_cmd))
app.command("pairs")(friendly(pairs_cmd))
app.command("explain")(friendly(explain_cmd))
app.command("robustness")(friendly(robustness_cmd))
app.command("inspect")(friendly(inspect_cmd))
app.command("push")(friendly(push_cmd))
app.add_typer(monitor_app(friendly), name="monitor")
app.add_typer(assistant_app(friendly), name="assistant")
app.add_typer(label_app(friendly), name="label")
app.command("recommend")(friendly(recommend_cmd))
app.command("studio")(friendly(studio_cmd))


def main() -> None:  # pragma: no cover - console entry
    app()
