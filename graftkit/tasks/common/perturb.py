"""Robustness perturbations of whole-text inputs: the text and its pair change, the label stays."""
from __future__ import annotations

from dataclasses import replace

from graftkit.data.dataset import Example
from graftkit.data.perturb import Perturbed, perturb
from graftkit.tasks.capabilities import Perturbs


class TextPerturbs(Perturbs):
    """Perturbs ``text`` and ``text_pair`` with independent seeds; subclasses say what counts as a change."""

    def perturb(self, example: Example, name: str, seed: int, key: int, rate: float) -> tuple[Example, Perturbed]:
        p = perturb(example.text, name, seed, key, rate)
        pair = perturb(example.text_pair, name, seed, f"{key}-pair", rate).text if example.text_pair is not None \
            else None
        return replace(example, text=p.text, text_pair=pair), p
