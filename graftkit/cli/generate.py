"""`graftkit generate`: stream text from a causal_lm / seq2seq run, or generate a whole file
(registered in graftkit/cli/main.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

err = Console(stderr=True)


def generate_cmd(
    run_dir: Path = typer.Argument(..., help="A finished causal_lm or seq2seq run folder."),
    prompts: Optional[List[str]] = typer.Argument(None, help="Prompts; each is streamed to stdout as it is "
                                                  "generated (or use --input)."),
    input_: Optional[Path] = typer.Option(None, "--input", "-i", help="File of prompts: .txt (one per line) or "
                                          ".jsonl/.csv with the run's prompt column; resumes a partial --output."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="--input: write JSON Lines here "
                                          "(default: stdout)."),
    batch_size: int = typer.Option(16, min=1, help="--input: prompts per generate() call."),
    overwrite: bool = typer.Option(False, "--overwrite", help="--input: start --output over instead of resuming it."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Override (capped by the run's max_new_tokens_limit)."),
    num_beams: Optional[int] = typer.Option(None, help="Override the beam width."),
    do_sample: Optional[bool] = typer.Option(None, "--sample/--greedy", help="Sample, or decode greedily / by beams."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus sampling mass."),
    repetition_penalty: Optional[float] = typer.Option(None, help="Penalty on repeated tokens (1 = none)."),
    no_repeat_ngram_size: Optional[int] = typer.Option(None, help="Forbid repeated n-grams of this size."),
):
    """Generate text with a fine-tuned decoder or encoder-decoder; tokens appear as they are produced."""
    from graftkit.errors import GraftkitError
    from graftkit.inference.generate_file import generate_file
    from graftkit.inference.generator import Generator
    from graftkit.progress import progress_bar

    if not prompts and not input_:
        raise GraftkitError("give prompts as arguments or a file with --input")
    overrides = dict(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample,
                     temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                     no_repeat_ngram_size=no_repeat_ngram_size)
    generator = Generator(run_dir)
    if input_:
        n = generate_file(generator, input_, output, batch_size, progress_factory=progress_bar, overwrite=overwrite,
                          log=lambda m: err.print(m, highlight=False), **overrides)
        err.print(f"[green]{n} generations[/] → {output or 'stdout'}")
        return
    generator.config_for(**overrides)  # a bad override fails before any output
    for prompt in prompts:
        for chunk in generator.stream(prompt, **overrides):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        sys.stdout.write("\n")


def pairs_cmd(
    run_dir: Path = typer.Argument(..., help="A finished causal_lm or seq2seq run trained on data-to-text."),
    data: Path = typer.Option(..., "--data", "-d", help="Labelled file (the run's prompt and completion columns): "
                              "the references are the chosen completions."),
    out: Path = typer.Option(..., "--out", "-o", help="JSON Lines of prompt / chosen / rejected to write."),
    seed: int = typer.Option(0, help="Seed of the planted slot errors."),
    batch_size: int = typer.Option(16, min=1, help="Prompts per generate() call."),
):
    """Build DPO / reward pairs: chosen = the reference; rejected = the run's output where the slot-error check
    finds an error in it, else the reference with a planted slot error."""
    from graftkit.evaluate.preference_pairs import build_pairs
    from graftkit.progress import progress_bar

    with progress_bar(None, "generating") as advance:
        counts = build_pairs(run_dir, data, out, seed, batch_size, progress=advance)
    err.print(f"[green]{counts['rows'] - counts['skipped']} pairs[/] → {out}: {counts['from_model']} rejected "
              f"outputs of the run with slot errors, {counts['planted']} references with a planted error, "
              f"{counts['skipped']} rows skipped (no slot to plant an error in)")
