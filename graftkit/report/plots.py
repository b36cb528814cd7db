"""Plots people look at instead of reading tables: confusion matrix, training and learning curves."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from graftkit.io import atomic_path


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, object]:
    """A figure and its axes from matplotlib's object API: no pyplot state and no global backend
    switch (``Figure.savefig`` renders with Agg), so importing this module changes nothing."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically as PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return path


def confusion_matrix_png(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix with raw counts annotated."""
    n = len(labels)
    size = max(4.0, min(0.45 * n + 2, 30))
    fig, ax = new_figure((size, size))
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels=list(labels), rotation=60 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return save_png(fig, path)


def training_curve_png(history: list[dict], metric: str, path: Path) -> Path | None:
    """Training and validation loss against steps, and the validation metric on a second axis."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evals = [h for h in history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    fig, ax = new_figure((7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue", alpha=0.8)
    if evals:
        ax.plot([h["step"] for h in evals], [h["eval_loss"] for h in evals], "o-", label="validation loss",
                color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    key = f"eval_{metric}"
    lines, names = ax.get_legend_handles_labels()
    if any(key in h for h in evals):
        ax2 = ax.twinx()
        pts = [(h["step"], h[key]) for h in evals if key in h]
        ax2.plot(*zip(*pts), "s--", color="tab:green", label=f"validation {metric}")
        ax2.set_ylabel(metric)
        l2, n2 = ax2.get_legend_handles_labels()
        lines, names = lines + l2, names + n2
    ax.legend(lines, names, loc="best")
    ax.set_title("Training curve")
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def curves_png(curves: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str,
               path: Path) -> Path | None:
    """One line per named series of (x, y) points (learning curves: a metric against labelled rows)."""
    drawn = {name: sorted(points) for name, points in curves.items() if points}
    if not drawn:
        return None
    fig, ax = new_figure((7, 4))
    for name, points in drawn.items():
        ax.plot(*zip(*points), "o-", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return save_png(fig, path)
