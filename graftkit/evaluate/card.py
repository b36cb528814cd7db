"""The model card: README.md of a run folder, stating data, hyper-parameters, results and trust reports.

It is a Hugging Face Hub model card (``huggingface_hub.ModelCard``): YAML metadata (library,
pipeline tag, base model, datasets, metrics and a ``model-index`` with the test results) and a
plain Markdown body the Hub renders, with sections for calibration, robustness, slices and
data quality when the run has them.
"""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from graftkit.io import write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import CardMetadata, Generates
from graftkit.tasks.run_config import RunConfig


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _is_hub_id(name: str) -> bool:
    return "/" in name and not name.startswith(("/", ".", "bundled:")) and not Path(name).exists()


def card_data(cfg: RunConfig, task_name: str, pipeline: str | None, results: dict) -> ModelCardData:
    """The card's metadata: what the Hub indexes (task, base model, dataset, test metrics)."""
    d = cfg.data
    dataset = d.hub.path if d.hub else Path(d.test or d.train or "data").name
    test = {k: v for k, v in (results.get("test") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("n", "predict_seconds")}
    evals = [EvalResult(task_type=pipeline or task_name, dataset_type=d.hub.path if d.hub else "local",
                        dataset_name=dataset, dataset_split="test", metric_type=k, metric_value=float(v))
             for k, v in test.items()] if test else None
    return ModelCardData(
        language=None, library_name="transformers", pipeline_tag=pipeline, tags=["graftkit", task_name],
        base_model=cfg.model.name_or_path if _is_hub_id(cfg.model.name_or_path) else None,
        datasets=[d.hub.path] if d.hub else None, metrics=sorted(test) or None,
        model_name=cfg.name if evals else None, eval_results=evals)


def write_model_card(run: RunFolder, cfg: RunConfig, task: Task, results: dict, metric: str) -> None:
    """The run's README.md: data, settings, results and trust reports; the task's part comes from its
    ``CardMetadata`` (pipeline tag, notes, usage) and, for a task that generates, its decoding settings."""
    card = task.capability(CardMetadata, "train")
    state = run.task_state()
    generates = task.optional(Generates)
    body = (_header(cfg, state, results, metric) + _strategy(results.get("strategy"))
            + _self_training(results.get("self_training"))
            + (generates.decoding_section(run.path) if generates else [])
            + _results(results, card.notes(results)) + _calibration(results.get("calibration"))
            + _out_of_scope(results.get("out_of_scope"))
            + _robustness(results.get("robustness")) + _slices(results) + _quality(results.get("data_quality"))
            + ["## Use", "", *card.usage(run.public_path)])
    meta = card_data(cfg, state["task"], card.pipeline_tag, results)
    write_text(run.card, str(ModelCard(f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(body))))


def _header(cfg: RunConfig, state: dict, results: dict, metric: str) -> list[str]:
    d, t = cfg.data, cfg.train
    lines = [
        f"# {cfg.name}", "",
        f"A `{state.get('task')}` model {_made(results)} with graftkit from `{cfg.model.name_or_path}`.", "",
        "## Data", "",
        f"- train: `{d.train or (d.hub and d.hub.path)}` ({results['data']['train']} "
        f"{'examples' if _trained(results) else 'label descriptions'})",
        f"- validation: `{d.validation or _unnamed(results)}` ({results['data']['validation']} examples)",
        f"- test: `{d.test or _unnamed(results)}` ({results['data']['test']} examples)",
        f"- columns: text=`{d.text_column}`" + (f", pair=`{d.text_pair_column}`" if d.text_pair_column else "")
        + f", label=`{d.label_column}`; max_length={d.max_length}",
    ]
    lines += [f"- {n}" for n in results["data"]["notes"]]
    if "labels" in state:
        lines.append(f"- labels ({len(state['labels'])}): {', '.join(map(str, state['labels'][:50]))}"
                     + (" ..." if len(state["labels"]) > 50 else ""))
    if not _trained(results):
        return lines + [""]
    lines += ["", "## Hyper-parameters", "", "| setting | value |", "| --- | --- |"]
    for k in ("epochs", "max_steps", "batch_size", "learning_rate", "optimizer", "weight_decay", "warmup",
              "scheduler", "grad_accum", "max_grad_norm", "precision", "seed", "group_by_length"):
        lines.append(f"| {k} | {getattr(t, k)} |")
    return lines + [f"| selection metric | {metric} |", f"| dropout override | {cfg.model.dropout} |", ""]


def _trained(results: dict) -> bool:
    """False for a run built without any training (zero-shot)."""
    return (results.get("strategy") or {}).get("trained", True)


def _unnamed(results: dict) -> str:
    """Where a split without a file came from: the training file, or (zero-shot: nothing is split) nowhere."""
    return "split from train" if _trained(results) else "none"


def _made(results: dict) -> str:
    return "fine-tuned" if _trained(results) else "built without training (zero-shot: no labelled examples)"


def _strategy(strategy: dict | None) -> list[str]:
    if not strategy:
        return []
    return ["## Training strategy", "", f"**{strategy['chosen']}**: {strategy['method']}.", "",
            f"Chosen because: {strategy['reason']}.", ""]


def _self_training(record: dict | None) -> list[str]:
    if not record:
        return []
    metric = record["metric"]
    lines = ["## Self-training", "",
             f"Rounds on the unlabelled texts of `{record['unlabelled']}`: after each round the model labelled them, "
             "and the rows above their class's confidence threshold (set on validation) joined the training data, "
             f"the same number per class. It stopped because {record['stopped']}; this model is round "
             f"{record['chosen_round']}, the best by validation {metric}.", "", f"| round | rows added | training rows | mean confidence | validation {metric} |",
             "| --- | --- | --- | --- | --- |"]
    for r in record["rounds"]:
        mean = r.get("mean_confidence")
        lines.append(f"| {r['round']} | {r['added']} | {r['train_rows']} | {'' if mean is None else f'{mean:.3f}'} | "
                     f"{r[metric]:.4f} |")
    return lines + [""]


def _results(results: dict, notes: list[str]) -> list[str]:
    lines = ["## Results", "", "| split | metric | value |", "| --- | --- | --- |"]
    for split in ("validation", "test"):
        for k, v in (results.get(split) or {}).items():
            if isinstance(v, (int, float)) and k not in ("n", "predict_seconds"):
                lines.append(f"| {split} | {k} | {_fmt(v)} |")
    tm = results.get("train", {})
    if "train_samples_per_second" in tm:
        lines.append(f"| train | samples/second | {_fmt(tm['train_samples_per_second'])} |")
    for note in notes:
        lines += ["", note]
    return lines + ["", "![training curve](plots/training_curve.png)", "",
                    "![confusion matrix](plots/confusion_matrix.png)", ""]


def _calibration(cal: dict | None) -> list[str]:
    if not cal:
        return []
    t = cal["temperature"]
    shown = ", ".join(f"{x:.3f}" for x in t) if isinstance(t, list) else f"{t:.3f}"
    lines = ["## Calibration", "",
             f"Temperature scaling: T = {shown}" + (f" (fitted on the {cal['fitted_on']} split by NLL; "
                                                   "applied to every backend's scores)" if cal["fitted_on"] else ""),
             ""]
    if cal.get("note"):
        lines += [f"Note: {cal['note']}.", ""]
    lines += ["| split | ECE before | ECE after | Brier before | Brier after | NLL before | NLL after |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for split in ("validation", "test"):
        if split in cal:
            b, a = cal[split]["before"], cal[split]["after"]
            lines.append(f"| {split} | {b['ece']:.4f} | {a['ece']:.4f} | {b['brier']:.4f} | {a['brier']:.4f} | "
                         f"{b['nll']:.4f} | {a['nll']:.4f} |")
    lines += ["", "ECE: 15 equal-width confidence bins. "
              + ("The test split is held out from the fit." if "test" in cal else ""), ""]
    for split in ("test", "validation"):
        if split in cal:
            lines += [f"![reliability diagram](plots/reliability_{split}.png)", ""]
            break
    return lines


def _out_of_scope(oos: dict | None) -> list[str]:
    if not oos:
        return []
    lines = ["## Out-of-scope detection", "",
             f"Predictions say `out_of_scope` when the **{oos['detector']}** score exceeds {oos['threshold']:.4g}, "
             f"chosen on the {oos['chosen_on']} split (target in-scope accuracy "
             f"{oos['target_in_scope_accuracy']:.2f}; out-of-scope rows: "
             + ", ".join(f"{k} {v}" for k, v in oos["out_of_scope_rows"].items()) + "). Every detector at its own "
             "threshold:", "",
             "| detector | split | AUROC | FPR95 | out-of-scope recall | precision | in-scope accuracy | handoff rate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, d in oos["detectors"].items():
        for split in ("validation", "test"):
            if split in d:
                m = d[split]
                lines.append(f"| {name} | {split} | " + " | ".join(_fmt(m.get(k)) if m.get(k) is not None else "—"
                             for k in ("auroc", "fpr95", "oos_recall", "oos_precision", "in_scope_accuracy",
                                       "handoff_rate")) + " |")
    return lines + ["", "Scores read the raw logits (and the pooled features): temperature scaling changes no "
                    "decision. ![out-of-scope scores](plots/out_of_scope.png)", ""]


def _robustness(rob: dict | None) -> list[str]:
    if not rob:
        return []
    lines = ["## Robustness", "",
             f"{rob['rows']} rows of the {rob.get('file', 'data')}, each perturbed once per kind (seed {rob['seed']}, "
             f"{rob['rate']:.0%} of eligible words); `{rob['metric']}` clean: {_fmt(rob['clean'])}.", "",
             f"| perturbation | {rob['metric']} | change | flip rate |", "| --- | --- | --- | --- |"]
    for name, p in rob["perturbations"].items():
        flip = p.get("flip_rate", p.get("mean_abs_change"))
        lines.append(f"| {name} | {_fmt(p['metric'])} | {_fmt(p['delta'])} | {_fmt(flip)} |")
    return lines + ["", "Flip rate: share of predictions that changed (regression: mean absolute change).", ""]


def _slices(results: dict) -> list[str]:
    test = results.get("test") or results.get("validation") or {}
    if not test.get("slices"):
        return []
    lines = ["## Slices", ""]
    for column, values in test["slices"].items():
        keys = sorted({k for v in values.values() for k in v if k != "n"})[:4]
        lines += [f"### {column}", "", "| value | n | " + " | ".join(keys) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in keys) + " |"]
        for value, m in values.items():
            lines.append(f"| {value} | {m['n']} | " + " | ".join(_fmt(m.get(k, "")) for k in keys) + " |")
        lines.append("")
    return lines


def _quality(q: dict | None) -> list[str]:
    if not q:
        return []
    lines = ["## Data quality", "",
             "- duplicate rows within a split: " + ", ".join(f"{k} {v}" for k, v in q["duplicates"].items()),
             "- rows shared across splits (leakage): " + ", ".join(f"{k} {v}" for k, v in q["leakage"].items()),
             f"- texts with conflicting labels: {q['conflicting_texts']}",
             "- truncated at max_length: " + ", ".join(f"{k} {v:.1%}" for k, v in q["truncated_share"].items()),
             "- unknown-token rate: " + ", ".join(f"{k} {v:.2%}" for k, v in q["unk_rate"].items()), ""]
    if q["warnings"]:
        lines += ["Warnings:", ""] + [f"- {w}" for w in q["warnings"]] + [""]
    return lines + ["Full report: `graftkit inspect CONFIG` (add `--find-label-errors` to rank likely "
                    "mislabelled rows).", ""]
