"""`graftkit ensemble`: write one servable run folder combining finished runs, and evaluate it.

How members are combined at inference time is described in ``graftkit/inference/ensemble.py``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from graftkit.errors import GraftkitError, RunFolderError
from graftkit.evaluate.evaluator import evaluate_examples
from graftkit.inference.ensemble import COMBINE_MODES
from graftkit.inference.predictor import Predictor, load_task
from graftkit.io import read_json, write_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.train.trainer import prepare

MODEL_FILES = ("config.json", "labels.json", "config.yaml", "adapter_config.json", "bottleneck_config.json",
               "ensemble.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")


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
    task = load_task(runs[0])
    can_vote = task.can_vote
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
