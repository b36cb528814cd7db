"""`graftkit export` and `graftkit prune`: thin commands over graftkit.export."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

err = Console(stderr=True)


def export_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    format_: str = typer.Option("onnx", "--format", help="Export format (see graftkit/export/formats.py: onnx)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Also write an int8 graph (onnxruntime "
                                           "dynamic quantization): int8."),
    sample_size: int = typer.Option(64, help="Test inputs used for the logits comparison."),
    logits_tolerance: float = typer.Option(1e-3, help="Largest allowed |ONNX fp32 - torch| logit difference."),
    int8_tolerance: float = typer.Option(0.01, help="Largest allowed drop of the task metric from torch to int8."),
    opset: int = typer.Option(18, help="ONNX opset."),
):
    """Export RUN_DIR to RUN_DIR/onnx/ with a parity report (parity.json); refuses when parity fails."""
    from graftkit.export.formats import EXPORT_FORMATS

    export = EXPORT_FORMATS.get(format_)  # an unknown name lists the known ones
    report = export(run_dir, quantize=quantize, sample_size=sample_size, logits_tolerance=logits_tolerance,
                    int8_tolerance=int8_tolerance, opset=opset, log=lambda m: err.print(m, highlight=False))
    err.print(f"[green]parity ok[/] → {Path(run_dir) / 'onnx' / 'parity.json'}")
    for name, b in report["backends"].items():
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in b["metrics"].items())
        err.print(f"  {name:10s} {metrics}  {b['examples_per_second']} ex/s", highlight=False)


def prune_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the pruned run."),
    amount: float = typer.Option(0.3, help="Fraction of FFN neurons to remove in every layer."),
    recovery_steps: int = typer.Option(0, help="Fine-tune the pruned model this many steps on the run's data."),
):
    """Prune feed-forward neurons by magnitude, optionally recover by fine-tuning; writes compression.json."""
    from graftkit.export.prune import prune_run

    report = prune_run(run_dir, out, amount, recovery_steps, log=lambda m: err.print(m, highlight=False))
    for stage in ("before", "after"):
        r = report[stage]
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items())
        err.print(f"  {stage:6s} {r['parameters']:,} params, {r['weights_mb']} MB, {r['examples_per_second']} ex/s, "
                  f"{metrics}", highlight=False)
    err.print(f"[green]done:[/] {out} (report: {out / 'compression.json'})")
