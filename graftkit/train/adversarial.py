"""Adversarial training on the word-embedding matrix (FGM, PGD), task-agnostic.

After the ordinary forward/backward of a training step, the embedding matrix is pushed along
its gradient, the same batch is run again (its gradients add to the clean ones), and the
original weights are copied back bit for bit before the optimizer steps. Reference: Miyato
et al. 2017 (FGM) and Madry et al. 2018 (PGD), as used for text by Zhu et al. 2020.
"""
from __future__ import annotations

from typing import Callable

import torch

from graftkit.config import AdversarialConfig
from graftkit.errors import ConfigError
from graftkit.train.components import Component


class EmbeddingAttack:
    """Perturb ``model.get_input_embeddings().weight`` and restore it exactly.

    Args:
        cfg: method (fgm/pgd), epsilon (L2 radius), alpha (PGD step), steps (PGD iterations).
    """

    def __init__(self, cfg: AdversarialConfig):
        self.cfg = cfg

    @staticmethod
    def weight(model: torch.nn.Module) -> torch.nn.Parameter:
        w = model.get_input_embeddings().weight
        if not w.requires_grad:
            raise ConfigError("train.adversarial perturbs the word embeddings along their gradient, but they are "
                              "frozen here (train.freeze.embeddings or peft); unfreeze them or drop adversarial")
        return w

    def _step(self, w: torch.nn.Parameter, size: float) -> bool:
        g = w.grad
        norm = torch.norm(g) if g is not None else None
        if norm is None or norm == 0 or not torch.isfinite(norm):
            return False
        w.data.add_(size * g / norm)
        return True

    def _project(self, w: torch.nn.Parameter, original: torch.Tensor) -> None:
        delta = w.data - original
        norm = torch.norm(delta)
        if norm > self.cfg.epsilon:
            w.data.copy_(original + self.cfg.epsilon * delta / norm)

    def attack(self, model: torch.nn.Module, step: Callable[[], torch.Tensor]) -> None:
        """Run the adversarial passes of one training step; ``step`` does forward + backward once.

        On return the embedding weights equal their value before the call, and the parameter
        gradients hold clean + adversarial gradients (FGM) or clean + last PGD step (PGD).
        """
        w = self.weight(model)
        original = w.data.clone()
        try:
            if self.cfg.method == "fgm":
                if self._step(w, self.cfg.epsilon):
                    step()
                return
            clean = {p: p.grad.clone() for p in model.parameters() if p.grad is not None}
            for k in range(self.cfg.steps):
                if not self._step(w, self.cfg.alpha):
                    break
                self._project(w, original)
                model.zero_grad(set_to_none=False)
                if k == self.cfg.steps - 1:  # the final adversarial gradient is added to the clean one
                    _restore(clean)
                step()
            else:
                return
            _restore(clean)  # no usable gradient: leave the clean step as it was
        finally:
            w.data.copy_(original)


class Adversarial(Component):
    """An after-backward hook: the perturbed passes of ``train.adversarial`` add their gradients to the step's."""

    name = "adversarial"
    keys = ("train.adversarial.method", "train.adversarial.epsilon", "train.adversarial.alpha",
            "train.adversarial.steps")

    def __init__(self, attack: EmbeddingAttack):
        self.attack = attack

    @classmethod
    def for_model(cls, cfg: AdversarialConfig, model: torch.nn.Module) -> "Adversarial":
        """Raises ConfigError now, not at step 1, when the word embeddings are frozen."""
        attack = EmbeddingAttack(cfg)
        attack.weight(model)
        return cls(attack)

    def after_backward(self, trainer, model, inputs, step) -> None:
        self.attack.attack(trainer.accelerator.unwrap_model(model), step)


def _restore(grads: dict) -> None:
    for p, g in grads.items():
        p.grad.copy_(g)
