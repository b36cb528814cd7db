"""`graftkit explain`, `robustness`, `inspect` and `push`: thin commands over the trust reports."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
err = Console(stderr=True)


def explain_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder with torch weights."),
    texts: List[str] = typer.Argument(..., help="One or more texts to explain."),
    pair: Optional[str] = typer.Option(None, "--pair", help="Second text of a pair-input run."),
    target: Optional[str] = typer.Option(None, "--target", help="Class / label / target column to explain "
                                         "(default: the prediction)."),
    steps: int = typer.Option(50, help="Integrated-Gradients steps to start with (doubled until the completeness "
                              "delta is within 2%, up to 8x)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML page here."),
):
    """Show which words drove a prediction (Integrated Gradients over the input embeddings)."""
    from graftkit.evaluate.explain import Explainer, html_page, rich_text
    from graftkit.io import write_text

    explainer = Explainer(run_dir, steps=steps)
    pages = []
    for text in texts:
        r = explainer.explain(text, pair, target)
        pages.append(r)
        for block in explainer.blocks(r):
            if not block.words:
                out.print(f"{text}: {block.heading}", highlight=False)
                continue
            out.print(f"[bold]{escape(block.heading)}[/] (completeness delta {block.delta:+.1e}, {block.steps} "
                      "steps" + ("" if block.converged else ", NOT converged: raise --steps") + ")", highlight=False)
            out.print(rich_text(block.words))
    if html:
        write_text(html, html_page(pages[0], explainer.blocks(pages[0]), title=f"graftkit explanation: {run_dir.name}"))
        err.print(f"wrote {html}")


def robustness_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    data: Path = typer.Option(..., "--data", "-d", help="Labelled file (same columns as training)."),
    perturbation: Optional[List[str]] = typer.Option(None, "--perturbation", "-p", help="Only these kinds "
                                                     "(repeatable; default: all for the data's script)."),
    seed: int = typer.Option(13, help="Seed of every random choice."),
    rate: float = typer.Option(0.1, help="Probability that each eligible word is perturbed (at least one per row)."),
    max_rows: Optional[int] = typer.Option(None, help="Use a seeded sample of N rows (file order kept)."),
    backend: str = typer.Option("torch", help="Inference backend (torch; onnx after export)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Report file (default RUN_DIR/robustness.json)."),
):
    """Metric and flip rate under typos, case, punctuation and whitespace noise (robustness.json)."""
    from graftkit.evaluate.robustness import robustness_file

    rep = robustness_file(run_dir, data, perturbation, seed, rate, max_rows, backend, out_file)
    table = Table(title=f"robustness of {run_dir.name} on {data.name} ({rep['rows']} rows; clean "
                        f"{rep['metric']}={rep['clean']:.4f})")
    for col in ("perturbation", rep["metric"], "change", "flip rate", "example"):
        table.add_column(col)
    for name, p in rep["perturbations"].items():
        flip = p.get("flip_rate", p.get("mean_abs_change"))
        table.add_row(name, f"{p['metric']:.4f}", f"{p['delta']:+.4f}", f"{flip:.4f}", p["example"][:60])
    out.print(table)


def inspect_cmd(
    config: Path = typer.Argument(..., help="YAML config (see configs/)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a key (repeatable)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Report folder (default OUTPUT_DIR/NAME-inspect)."),
    find_label_errors: bool = typer.Option(False, "--find-label-errors", help="Also rank likely mislabelled rows "
                                           "(k-fold training + cleanlab; takes folds x a short training)."),
    folds: int = typer.Option(3, help="Cross-validation folds for --find-label-errors."),
    epochs: Optional[float] = typer.Option(None, help="Training epochs per fold (default: the config's)."),
):
    """Data-quality report: sizes, balance, duplicates, leakage, conflicts, lengths, [UNK] rate."""
    from graftkit.tasks import TASKS
    from graftkit.tasks.matrix import require
    from graftkit.tasks.run_config import load_config
    from graftkit.train.inspect import inspect_config

    cfg = load_config(config, set_)
    if find_label_errors:  # a task that cannot is refused before any work is shown
        require(TASKS.task_class(cfg.task), "inspect --find-label-errors")
    target = out_dir or Path(cfg.output_dir) / f"{cfg.name}-inspect"
    rep = inspect_config(cfg, target)
    _print_quality(rep)
    err.print(f"full report: {target / 'quality.json'}")
    if find_label_errors:
        from graftkit.train.label_errors import find_label_errors as run_search

        res = run_search(cfg, folds, target, {"epochs": epochs} if epochs else None,
                         log=lambda m: err.print(m, highlight=False))
        out.print(f"[bold]{res['flagged_count']}[/] of {res['rows']} rows look mislabelled → "
                  f"{target / 'label_issues.csv'} (worst first; {target / 'label_issues.png'})")


def _print_quality(rep: dict) -> None:
    table = Table(title="data quality")
    for col in ("split", "rows", "dup", "p50/p95/max tokens", "truncated", "[UNK]", "short"):
        table.add_column(col)
    for name, n in rep["rows"].items():
        t, d = rep["tokens"][name], rep["duplicates"]["within"][name]
        p = t["percentiles"]
        table.add_row(name, str(n), str(d["exact"] + d["near"]), f"{p['p50']}/{p['p95']}/{p['max']}",
                      f"{t['truncated_share']:.1%}", f"{t['unk_rate']:.2%}", str(t["short_texts"]))
    out.print(table)
    for name, b in rep["balance"].items():
        if b.get("counts"):
            top = ", ".join(f"{k}={v}" for k, v in list(b["counts"].items())[:12])
            out.print(f"{name} balance: {top}" + (" ..." if len(b["counts"]) > 12 else ""), highlight=False)
    for w in rep["warnings"]:
        out.print(f"[yellow]warning:[/] {w}", highlight=False)
    if not rep["warnings"]:
        out.print("[green]no data problems found[/]")


def push_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (with COMPLETE)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub repository, e.g. my-org/sentiment-v1."),
    private: bool = typer.Option(False, "--private", help="Create the repository as private."),
    token: Optional[str] = typer.Option(None, "--token", envvar="HF_TOKEN", help="Hub token (default: the "
                                        "logged-in one)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run the checks and list the files that would be "
                                 "uploaded; contact no server."),
):
    """Upload a run folder to the Hugging Face Hub (refuses unfinished runs and secret-looking files)."""
    from graftkit.export.push import check_pushable, push_run

    if dry_run:
        files = check_pushable(run_dir)
        out.print(f"[bold]{len(files)} files[/] would go to {repo_id}:", highlight=False)
        for name in files:
            out.print(f"  {name}", highlight=False)
        return
    url = push_run(run_dir, repo_id, token=token, private=private)
    out.print(f"[green]pushed:[/] {url}")
