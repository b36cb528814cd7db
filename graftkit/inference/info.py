"""A readable summary of a run folder."""
from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table

from graftkit.errors import RunFolderError
from graftkit.modeling.run_folder import RunFolder


def describe(run_dir: str | Path) -> Group:
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise RunFolderError(f"run folder not found: {run.path}")
    parts = []
    t = Table(title=f"run {run.path}", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("status", "complete" if run.is_complete else "unfinished (resume with graftkit train CONFIG --resume)")
    if run.labels.is_file():
        state = run.task_state()
        t.add_row("task", str(state.get("task")))
        if "labels" in state:
            t.add_row("labels", f"{len(state['labels'])}: " + ", ".join(map(str, state["labels"][:20])))
    if run.config.is_file():
        cfg = run.config_tree()
        t.add_row("base model", str(cfg["model"]["name_or_path"]))
        t.add_row("train data", str(cfg["data"].get("train")))
        t.add_row("epochs / lr / batch", f"{cfg['train']['epochs']} / {cfg['train']['learning_rate']} / "
                  f"{cfg['train']['batch_size']}")
    parts.append(t)
    metrics = run.read_metrics()
    if metrics:
        m = Table(title="metrics")
        for c in ("split", "metric", "value"):
            m.add_column(c)
        for split in ("validation", "test"):
            for k, v in (metrics.get(split) or {}).items():
                if isinstance(v, float):
                    m.add_row(split, k, f"{v:.4f}")
        parts.append(m)
    files = Table(title="files")
    files.add_column("path")
    files.add_column("size", justify="right")
    for p in sorted(run.path.rglob("*")):
        if p.is_file() and "checkpoints" not in p.parts and "logs" not in p.parts:
            files.add_row(str(p.relative_to(run.path)), _size(p.stat().st_size))
    parts.append(files)
    return Group(*parts)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
