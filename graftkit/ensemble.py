"""Ensembles of runs trained with the same labels: one servable run folder combining their outputs.

Layout of an ensemble run folder: the usual ``config.yaml``, ``labels.json``, tokenizer and
``config.json`` (copied from the first member), ``members/<i>/`` (each member's model files),
``ensemble.json`` (member list, ``combine`` and its settings) and ``metrics.json``.

Combining (``combine`` in ensemble.json):

* ``mean``: single-label and token classification average the members' probabilities (the
  ensemble's logits are their log-mean); multi-label averages sigmoid probabilities;
  regression averages predictions.
* ``vote``: the task's own rule, for a task with an optional method
  ``ensemble_logits(list[torch.Tensor]) -> torch.Tensor`` (the default for such a task). NER
  votes on entity spans (``graftkit/tasks/ner/ensemble.py``): its logits are the members'
  side by side and its decoding keeps the spans more than ``vote`` × members predict.
"""
from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from types import SimpleNamespace

import torch

from graftkit.errors import GraftkitError, RunFolderError
from graftkit.io import read_json, write_json
from graftkit.modeling.run_folder import RunFolder

MODEL_FILES = ("config.json", "labels.json", "config.yaml", "adapter_config.json", "bottleneck_config.json",
               "ensemble.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")


COMBINE_MODES = ("mean", "vote")


def average_logits(logits: list[torch.Tensor], problem_type: str | None) -> torch.Tensor:
    """Combine member logits so that the task's usual decoding sees averaged probabilities."""
    stacked = torch.stack([x.float() for x in logits])
    if problem_type == "regression":
        return stacked.mean(0)
    if problem_type == "multi_label_classification":
        return torch.logit(torch.sigmoid(stacked).mean(0), eps=1e-7)
    return torch.log(torch.softmax(stacked, dim=-1).mean(0).clamp_min(1e-12))


class EnsembleModel(torch.nn.Module):
    """Runs every member on the same features and combines their logits."""

    def __init__(self, members: list[torch.nn.Module], task, problem_type: str | None, combine: str = "mean"):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.task, self.problem_type, self.combine = task, problem_type, combine
        self._accepts = [set(inspect.signature(m.forward).parameters) for m in members]

    @classmethod
    def from_run(cls, run_dir: Path, task) -> "EnsembleModel":
        from graftkit.modeling.run_model import load_run_model

        spec = read_json(run_dir / "ensemble.json")
        members = [load_run_model(run_dir / m, task) for m in spec["members"]]
        # folders written before "combine" was a choice hold a description there: they averaged
        return cls(members, task, spec.get("problem_type"), "vote" if spec.get("combine") == "vote" else "mean")

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        feats = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        outs = []
        for model, accepts in zip(self.members, self._accepts):
            out = model(**{k: v for k, v in feats.items() if v is not None and k in accepts})
            outs.append(out.logits if hasattr(out, "logits") else out[0])
        if self.combine == "vote":
            return SimpleNamespace(logits=self.task.ensemble_logits(outs))
        return SimpleNamespace(logits=average_logits(outs, self.problem_type))


def _check_compatible(runs: list[RunFolder]) -> None:
    first = runs[0].task_state()
    for run in runs[1:]:
        state = run.task_state()
        if state.get("task") != first.get("task"):
            raise GraftkitError(f"{run.path} is a {state.get('task')} run, {runs[0].path} a {first.get('task')} run; "
                                "an ensemble needs runs of one task")
        if state.get("labels") != first.get("labels"):
            raise GraftkitError(f"{run.path} was trained with labels {state.get('labels')}, {runs[0].path} with "
                                f"{first.get('labels')}; an ensemble needs the same labels in the same order")
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(str(runs[0].path)).get_vocab()
    for run in runs[1:]:
        if AutoTokenizer.from_pretrained(str(run.path)).get_vocab() != vocab:
            raise GraftkitError(f"{run.path} uses a different tokenizer from {runs[0].path}; members must share one")


def _copy_member(run: RunFolder, dst: Path) -> None:
    dst.mkdir(parents=True)
    for f in run.path.iterdir():
        if f.is_file() and (f.suffix == ".safetensors" or f.name in MODEL_FILES + TOKENIZER_FILES):
            shutil.copy2(f, dst / f.name)
    if (run.path / "members").is_dir():  # an ensemble can be a member too
        shutil.copytree(run.path / "members", dst / "members")


def _combine_spec(runs: list[RunFolder], combine: str | None, vote: float) -> dict:
    """``combine`` (and ``vote``) for ensemble.json: the task's vote when it has one, unless told otherwise."""
    from graftkit.predictor import load_task

    task = load_task(runs[0])
    can_vote = hasattr(task, "ensemble_logits")
    combine = combine or ("vote" if can_vote else "mean")
    if combine not in COMBINE_MODES:
        raise GraftkitError(f"unknown combine '{combine}'; choose one of: {', '.join(COMBINE_MODES)}")
    if combine == "mean":
        for run in runs:  # a voting ensemble's logits are its members' side by side: nothing to average
            spec = run.path / "ensemble.json"
            if spec.is_file() and read_json(spec).get("combine") == "vote":
                raise GraftkitError(f"{run.path} is a voting ensemble; it can join a 'vote' ensemble, not a 'mean' "
                                    "one (or list its members instead)")
        return {"combine": "mean"}
    if not can_vote:
        raise GraftkitError(f"{task.name} runs have no vote rule; use combine 'mean'")
    if not 0.0 <= vote < 1.0:
        raise GraftkitError(f"vote={vote}: give the share of members a span must exceed, in [0, 1) "
                            "(0.5: strict majority)")
    return {"combine": "vote", "vote": vote}


def build_ensemble(run_dirs: list[str | Path], out_dir: str | Path, overwrite: bool = False,
                   log=print, combine: str | None = None, vote: float = 0.5) -> dict:
    """Write an ensemble run folder from finished runs and evaluate it on the members' test split.

    Args:
        run_dirs: two or more finished run folders trained with the same labels and tokenizer.
        out_dir: the ensemble run folder to create.
        overwrite: replace ``out_dir`` if it exists.
        log: receives progress lines.
        combine: "mean" (average probabilities) or "vote" (the task's rule, e.g. entity-span
            majority vote for NER); None picks "vote" where the task has one, else "mean".
        vote: with "vote", a span is kept when more than this share of members predict it.

    Returns:
        The ensemble's metrics (also in ``out_dir/metrics.json``).
    """
    from transformers import AutoConfig

    if len(run_dirs) < 2:
        raise GraftkitError("an ensemble needs at least two run folders")
    runs = [RunFolder(d).require_model() for d in run_dirs]
    _check_compatible(runs)
    how = _combine_spec(runs, combine, vote)
    out = RunFolder(out_dir)
    if out.path.exists():
        if not overwrite:
            raise RunFolderError(f"{out.path} already exists; choose another --out or pass --overwrite")
        shutil.rmtree(out.path)
    staging = out.path.with_name(f".{out.path.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for i, run in enumerate(runs):
        _copy_member(run, staging / "members" / str(i))
    for name in ("config.yaml", "labels.json", "config.json") + TOKENIZER_FILES:
        if (runs[0].path / name).is_file():
            shutil.copy2(runs[0].path / name, staging / name)
    problem_type = getattr(AutoConfig.from_pretrained(str(runs[0].path)), "problem_type", None)
    write_json(staging / "ensemble.json", {"members": [f"members/{i}" for i in range(len(runs))],
                                           "sources": [str(r.path) for r in runs], "problem_type": problem_type,
                                           **how})
    staging.rename(out.path)
    return evaluate_ensemble(out, runs, log)


def evaluate_ensemble(out: RunFolder, runs: list[RunFolder], log=print) -> dict:
    """Evaluate on the test split of the first member's config (re-read with its seed) and compare members."""
    from graftkit.evaluate.evaluator import evaluate_examples
    from graftkit.predictor import Predictor
    from graftkit.train.trainer import prepare

    predictor = Predictor(out.path)
    _, splits = prepare(predictor.cfg)
    results: dict = {"members": {str(r.path): r.read_metrics().get("test", {}) for r in runs}}
    if splits.test:
        res = evaluate_examples(predictor, splits.test, out.predictions / "test", predictor.cfg.eval.plots,
                                predictor.cfg.eval.batch_size)
        results["test"] = res
        log("ensemble test: " + ", ".join(f"{k}={v:.4f}" for k, v in res.items()
                                          if isinstance(v, float) and k != "predict_seconds"))
    out.update_metrics(**results)
    out.mark_complete()
    return results
