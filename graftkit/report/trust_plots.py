"""Plots of the trust reports: reliability diagrams, the label-error summary, out-of-scope score distributions.

Built on ``matplotlib.figure.Figure`` with the Agg canvas directly, so importing this module
changes no global matplotlib state (no ``matplotlib.use``, no pyplot figure registry).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from graftkit.io import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def reliability_diagram_png(bins_before: Sequence[dict], bins_after: Sequence[dict], ece_before: float,
                            ece_after: float, path: Path, title: str) -> Path:
    """Observed accuracy per confidence bin before and after temperature scaling, with the diagonal."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    width = 1.0 / len(bins_before)
    for bins, label, colour, shift in ((bins_before, f"before (ECE {ece_before:.3f})", "tab:red", -0.2),
                                       (bins_after, f"after (ECE {ece_after:.3f})", "tab:blue", 0.2)):
        xs = [(b["low"] + b["high"]) / 2 + shift * width for b in bins if b["n"]]
        ys = [b["accuracy"] for b in bins if b["n"]]
        ax.bar(xs, ys, width=0.4 * width, color=colour, alpha=0.8, label=label)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("observed accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def label_issue_png(counts: dict[str, int], total: dict[str, int], path: Path) -> Path:
    """Bar chart: rows flagged as likely mislabelled, per given label, with the share of that label."""
    labels = sorted(total, key=lambda k: -counts.get(k, 0))[:40]
    fig = Figure(figsize=(max(5, 0.35 * len(labels) + 2), 4))
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), [counts.get(k, 0) for k in labels], color="tab:orange")
    for i, k in enumerate(labels):
        share = counts.get(k, 0) / max(total[k], 1)
        ax.text(i, counts.get(k, 0), f"{share:.0%}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=60 if len(labels) > 6 else 0,
                  ha="right" if len(labels) > 6 else "center")
    ax.set_ylabel("likely label errors")
    ax.set_title("Likely label errors per given label (share of that label)")
    return _save(fig, path)


def score_distribution_png(in_scope, out_of_scope, threshold: float, path: Path, title: str) -> Path:
    """Histograms of an out-of-scope score for in-scope and out-of-scope questions, with the threshold."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    values = np.concatenate([np.asarray(in_scope, float), np.asarray(out_of_scope, float)])
    bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=40)
    ax.hist(in_scope, bins=bins, alpha=0.6, color="tab:blue", label=f"in scope ({len(in_scope)})", density=True)
    if len(out_of_scope):
        ax.hist(out_of_scope, bins=bins, alpha=0.6, color="tab:red", label=f"out of scope ({len(out_of_scope)})",
                density=True)
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("out-of-scope score (higher: more likely out of scope)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)
