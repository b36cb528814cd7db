"""`graftkit ensemble`: write one servable run folder combining finished runs, and evaluate it.

Members must have been trained on the same data, split the same way, with the same targets: otherwise
one member's training rows could be another's test rows, and the ensemble's test score would be
inflated. This is judged by the content hash of each split recorded at training, not by data paths.
The ensemble is evaluated on the test split recorded in the members' run folders. The folder is built
and evaluated next to its target and published by rename, so an old result is replaced only by a
complete new one, and a second writer of the same folder gets a clear error.

How members are combined at inference time is described in ``graftkit/inference/ensemble.py``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from graftkit.errors import GraftkitError, RunFolderError
from graftkit.evaluate.evaluator import evaluate_examples
from graftkit.inference.ensemble import COMBINE_MODES, combiner
from graftkit.inference.predictor import Predictor, load_run_config, load_task
from graftkit.io import publish_run, read_json, sole_writer, staging_path, write_json, write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import Votes
from graftkit.tasks.matrix import require
from graftkit.tasks.run_config import dump_config
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


#: the splits whose content hashes (``training_setup.json`` → ``data_digest``) members must share
SPLITS = ("train", "validation", "test")
#: data settings that decide which rows a member trained, validated and was tested on (and what it predicts):
#: compared only for members trained before content hashes were recorded
DATA_FIELDS = ("train", "validation", "test", "hub", "format", "text_column", "text_pair_column", "label_column",
               "label_separator", "split", "drop_invalid")


def _data_digest(run: RunFolder) -> dict | None:
    setup = run.path / "training_setup.json"
    return read_json(setup).get("data_digest") if setup.is_file() else None


def _check_same_data(runs: list[RunFolder]) -> None:
    """Refuse members trained on different data, splits or targets, by the content hash of each split recorded
    at training: the same rows at another path pass, other rows at the same path do not."""
    digests = [_data_digest(run) for run in runs]
    if not all(digests):  # a member from before the hashes were recorded
        _check_same_data_settings(runs)
        return
    for run, digest in zip(runs[1:], digests[1:]):
        for split in SPLITS:
            if digest.get(split) != digests[0].get(split):
                raise GraftkitError(f"members were trained on different data: the {split} split of {run.path} "
                                    f"differs from that of {runs[0].path} (the content hashes recorded at training "
                                    "differ); an ensemble needs members trained on the same rows, split the same way "
                                    "and with the same targets (otherwise one member's training rows can be "
                                    "another's test rows)")


def _check_same_data_settings(runs: list[RunFolder]) -> None:
    """Without recorded hashes: the data settings must agree (naming the one that differs), and the test splits."""
    first = load_run_config(runs[0]).data
    for run in runs[1:]:
        data = load_run_config(run).data
        for field in DATA_FIELDS:
            a, b = getattr(first, field), getattr(data, field)
            a, b = (x.model_dump() if hasattr(x, "model_dump") else x for x in (a, b))
            if a != b:
                what = "targets" if field == "label_column" else "data or splits"
                raise GraftkitError(f"members differ in data.{field}: {runs[0].path} has {a!r}, {run.path} has "
                                    f"{b!r}; an ensemble needs members trained on the same {what} (otherwise "
                                    "one member's training rows can be another's test rows)")
    split = runs[0].read_test_split()
    for run in runs[1:]:
        other = run.read_test_split()
        if split is not None and other is not None and \
                [(e.text, e.text_pair) for e in split] != [(e.text, e.text_pair) for e in other]:
            raise GraftkitError(f"{run.path} was tested on other rows than {runs[0].path} (their recorded test "
                                "splits differ); train the members with the same data and split settings")


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
    require(task, "ensemble")
    can_vote = task.has(Votes)
    combine = combine or ("vote" if can_vote else "mean")
    if combine not in COMBINE_MODES:
        raise GraftkitError(f"unknown combine '{combine}'; choose one of: {', '.join(COMBINE_MODES)}")
    combiner(task, combine)  # the task has this rule, or the refusal names what it supports
    if combine == "mean":
        for run in runs:  # a voting ensemble's logits are its members' side by side: nothing to average
            if (run.path / "ensemble.json").is_file() and run.ensemble_spec()["combine"] == "vote":
                raise GraftkitError(f"{run.path} is a voting ensemble; it can join a 'vote' ensemble, not a 'mean' "
                                    "one (or list its members instead)")
        return {"combine": "mean"}
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
    _check_same_data(runs)
    how = _combine_spec(runs, combine, vote)
    out = RunFolder(out_dir)
    if out.path.exists() and not overwrite:
        raise RunFolderError(f"{out.path} already exists; choose another --out or pass --overwrite")
    with sole_writer(out.path):
        staging = staging_path(out.path)
        shutil.rmtree(staging, ignore_errors=True)  # left by a crashed writer (we hold the lock)
        staging.mkdir(parents=True)
        for i, run in enumerate(runs):
            _copy_member(run, staging / "members" / str(i))
        for name in ("labels.json", "config.json", "test_split.jsonl") + TOKENIZER_FILES:
            if (runs[0].path / name).is_file():
                shutil.copy2(runs[0].path / name, staging / name)
        write_text(staging / "config.yaml", dump_config(load_run_config(runs[0])))  # today's format, as ensemble.json
        problem_type = getattr(AutoConfig.from_pretrained(str(runs[0].path)), "problem_type", None)
        write_json(staging / "ensemble.json", {"members": [f"members/{i}" for i in range(len(runs))],
                                               "sources": [str(r.path) for r in runs], "problem_type": problem_type,
                                               **how})
        results = evaluate_ensemble(RunFolder(staging), runs, log)  # complete before it replaces anything
        publish_run(staging, out.path)
    return results


def evaluate_ensemble(out: RunFolder, runs: list[RunFolder], log=print) -> dict:
    """Evaluate on the test split recorded in the first member's run folder and compare members."""
    predictor = Predictor(out.path)
    test = runs[0].read_test_split()
    if test is None:  # a run folder from before test splits were recorded: re-read with the recorded seed
        log(f"{runs[0].path} records no test split; re-splitting its data with the recorded seed")
        _, splits = prepare(predictor.cfg)
        test = splits.test
    results: dict = {"members": {str(r.path): r.read_metrics().get("test", {}) for r in runs}}
    if test:
        res = evaluate_examples(predictor, test, out.predictions / "test", predictor.cfg.eval.plots,
                                predictor.cfg.eval.batch_size)
        results["test"] = res
        log("ensemble test: " + ", ".join(f"{k}={v:.4f}" for k, v in res.items()
                                          if isinstance(v, float) and k != "predict_seconds"))
    out.update_metrics(**results)
    out.mark_complete()
    return results
