"""Why a prediction was made: Integrated Gradients over the input embeddings (captum).

Method: ``captum.attr.LayerIntegratedGradients`` on the word-embedding layer (for an ensemble,
every member's, so the averaged output is attributed). The **baseline** is the same input with
every text token replaced by ``[PAD]`` (the special tokens ``[CLS]``/``[SEP]`` are kept, so the
baseline is "the same frame, no words"). The path integral uses ``steps`` Gauss-Legendre points
(default 50). Attributions of word pieces are summed per word (per character for Chinese, which
BERT-style tokenizers split into characters); the **completeness delta** is
``Σ attributions − (f(input) − f(baseline))``, the integration error, reported with each result.
When it exceeds 2% of ``f(input) − f(baseline)`` the step count doubles (up to ``max_steps``);
``converged`` says whether the tolerance was met.

What ``f`` is comes from the task's ``Explains`` capability (graftkit/tasks/capabilities.py):
* classification: the calibrated probability of the target class (default: the predicted one);
  multi-label: that label's sigmoid probability;
* regression: the predicted value of a target column (original scale);
* NER: per predicted entity, the mean probability, over the entity's words, of that entity type's
  tags (B-/I-/E-/S-... of the type).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from graftkit.errors import GraftkitError
from graftkit.inference.base import task_class_of
from graftkit.inference.predictor import Predictor
from graftkit.modeling.outputs import output_logits
from graftkit.modeling.run_folder import ONNX_DIR, RunFolder
from graftkit.tasks.capabilities import ExplainedBlock, Explains
from graftkit.tasks.matrix import require

DEFAULT_STEPS = 50
MAX_STEPS = 1000
#: completeness is met when |delta| <= TOLERANCE * |f(input) - f(baseline)| + ABS_TOLERANCE; until then the
#: step count doubles, up to ``max_steps`` (a sharp, saturating model needs more points on the path)
TOLERANCE, ABS_TOLERANCE = 0.02, 1e-4


def require_torch_weights(run_dir: str | Path) -> None:
    """Explanations need gradients: refuse an export-only folder (ONNX graph, no torch weights)."""
    run = Path(run_dir)
    has_torch = any(run.glob("*.safetensors")) or any((run / n).is_file() for n in
                                                       ("adapter_config.json", "ensemble.json"))
    if not has_torch and (run / ONNX_DIR).is_dir():
        raise GraftkitError(f"{run} holds only an ONNX export; explanations need the torch weights "
                            "(model.safetensors), which carry the gradients. Explain the original run folder.")


def embedding_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The word-embedding layer(s) whose output is attributed (one per ensemble member)."""
    members = getattr(model, "members", None)
    if isinstance(members, torch.nn.ModuleList):
        return [layer for m in members for layer in embedding_layers(m)]
    return [model.get_input_embeddings()]


class Explainer:
    """Attributions for one run folder, loaded once.

    Args:
        run_dir: a finished run folder with torch weights (full, adapter, bottleneck or ensemble).
        steps: integration steps to start with (more: smaller completeness delta, slower).
        max_steps: the step count doubles until completeness holds or it would exceed this
            (default: 8 × ``steps``, at most ``MAX_STEPS``).
        internal_batch_size: interpolation points evaluated per forward pass.
    """

    def __init__(self, run_dir: str | Path, steps: int = DEFAULT_STEPS, max_steps: int | None = None,
                 internal_batch_size: int = 25, predictor: Predictor | None = None):
        require_torch_weights(run_dir)  # first: an export-only folder fails require_model's check less helpfully
        if predictor is None:
            require(task_class_of(RunFolder(run_dir).require_model()), "explain")
        max_steps = max_steps if max_steps is not None else min(8 * steps, MAX_STEPS)
        if not 1 <= steps <= max_steps <= MAX_STEPS:
            raise GraftkitError(f"steps must be between 1 and {MAX_STEPS} and at most max_steps "
                                f"(got steps={steps}, max_steps={max_steps})")
        self.max_steps = max_steps
        self.predictor = predictor or Predictor(run_dir, backend="torch")
        self.task = self.predictor.task
        self.explains = self.task.capability(Explains, "explain")
        self.max_length = self.predictor.max_length
        self.model = self.predictor.backend.model
        self.device = self.predictor.backend.device
        self.tokenizer = self.predictor.tokenizer
        self.steps, self.internal_batch_size = steps, internal_batch_size
        self.layers = embedding_layers(self.model)

    # -- the attribution itself (the engine the task's Explains calls)
    def attribute(self, enc, f: Callable[[torch.Tensor], torch.Tensor], steps: int) -> dict[str, Any]:
        """Attributions of ``f(model logits)``, doubling the steps until completeness holds (or the cap)."""
        while True:
            attrs, delta, fx, fb = self._integrate(enc, f, steps)
            ok = abs(delta) <= TOLERANCE * abs(fx - fb) + ABS_TOLERANCE
            if ok or steps * 2 > self.max_steps:
                return {"attrs": attrs, "delta": delta, "score": fx, "baseline_score": fb, "steps": steps,
                        "converged": ok}
            steps *= 2

    def _integrate(self, enc, f: Callable[[torch.Tensor], torch.Tensor],
                   steps: int) -> tuple[np.ndarray, float, float, float]:
        """Per-token attributions of ``f(model logits)`` and (delta, f(input), f(baseline))."""
        from captum.attr import LayerIntegratedGradients  # heavy optional dependency

        ids = torch.as_tensor([enc["input_ids"]], device=self.device)
        special = torch.as_tensor([self.tokenizer.get_special_tokens_mask(enc["input_ids"],
                                                                           already_has_special_tokens=True)],
                                  device=self.device).bool()
        baseline = torch.where(special, ids, torch.full_like(ids, self.tokenizer.pad_token_id))
        extra = {k: torch.as_tensor([enc[k]], device=self.device) for k in ("attention_mask", "token_type_ids")
                 if k in enc and k in self.predictor.backend.accepts}
        names = list(extra)

        def forward(input_ids, *args):
            return f(output_logits(self.model(input_ids=input_ids, **dict(zip(names, args)))).float())

        lig = LayerIntegratedGradients(forward, self.layers if len(self.layers) > 1 else self.layers[0])
        attrs, delta = lig.attribute(ids, baselines=baseline, additional_forward_args=tuple(extra.values()),
                                     n_steps=steps, internal_batch_size=self.internal_batch_size,
                                     return_convergence_delta=True)
        attrs = sum(a.sum(-1) for a in attrs) if isinstance(attrs, list) else attrs.sum(-1)
        with torch.no_grad():
            fx, fb = (float(forward(x, *extra.values())[0]) for x in (ids, baseline))
        return attrs[0].detach().cpu().numpy(), float(delta[0]), fx, fb

    # -- explanations
    def explain(self, text: str, pair: str | None = None, target: str | int | None = None,
                steps: int | None = None) -> dict[str, Any]:
        """Attributions for one input.

        Args:
            text: the input (NER: a sentence; entities are predicted, then each is explained).
            pair: the second text of a pair-input run.
            target: a class / label / target column (default: the prediction).
            steps: steps to start with for this call (default: the explainer's), at most ``max_steps``.
        """
        steps = steps or self.steps
        if not 1 <= steps <= self.max_steps:
            raise GraftkitError(f"steps must be between 1 and max_steps={self.max_steps} (got {steps})")
        return self.explains.explain(self, text, pair, target, steps)

    def blocks(self, explanation: dict[str, Any]) -> list[ExplainedBlock]:
        """The explanation's attributed targets, for display."""
        return self.explains.blocks(explanation)


# -- rendering -------------------------------------------------------------------------------
def _alpha(a: float, scale: float) -> float:
    return min(abs(a) / scale, 1.0) if scale > 0 else 0.0


def rich_text(words: list[dict]):
    """A ``rich.text.Text`` with each word's background green (for the target) or red (against)."""
    from rich.text import Text

    scale = max((abs(w["attribution"]) for w in words), default=0.0)
    out = Text()
    for i, w in enumerate(words):
        level = int(round(_alpha(w["attribution"], scale) * 4))
        colour = ("green" if w["attribution"] > 0 else "red") if level else None
        style = f"black on {colour}" if level >= 3 else (colour or "")
        if i and (w["segment"] != words[i - 1]["segment"]):
            out.append("  ‖  ")
        elif i:
            out.append(" ")
        out.append(w["text"], style=style + (" bold" if level >= 2 else ""))
    return out


def html_words(words: list[dict]) -> str:
    """Words as ``<span>``s tinted by attribution (green: for the target, red: against)."""
    scale = max((abs(w["attribution"]) for w in words), default=0.0)
    parts = []
    for w in words:
        a = _alpha(w["attribution"], scale)
        rgb = "22,163,74" if w["attribution"] > 0 else "220,38,38"
        parts.append(f'<span class="w" style="background: rgba({rgb},{a:.2f})" '
                     f'title="{w["attribution"]:+.4f}">{html.escape(w["text"])}</span>')
    return " ".join(parts)


def _html_block(block: ExplainedBlock) -> str:
    if not block.words:
        return f"<p>{html.escape(block.heading)}</p>"
    return (f"<h2>{html.escape(block.heading)}</h2><p>{html_words(block.words)}</p>"
            f"<p class=m>completeness delta {block.delta:+.2e}</p>")


def html_page(explanation: dict, blocks: list[ExplainedBlock], title: str = "graftkit explanation") -> str:
    """A self-contained HTML page of one explanation (no scripts, no external resources); ``blocks`` are
    its attributed targets (``Explainer.blocks``)."""
    blocks = [_html_block(b) for b in blocks]
    meta = f"Integrated Gradients, {explanation['steps']} steps; baseline: {html.escape(explanation['baseline'])}."
    return ("<!doctype html><html><head><meta charset=utf-8><title>" + html.escape(title) + "</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;line-height:2}"
            ".w{padding:.1rem .2rem;border-radius:.2rem}.m{color:#555;font-size:.9rem}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>" + "".join(blocks) + f"<p class=m>{meta} Green words push towards "
            "the target, red ones away from it; hover a word for its attribution.</p></body></html>")
