"""The model card: README.md of a run folder, stating data, hyper-parameters and results."""
from __future__ import annotations

from graftkit.io import write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS
from graftkit.tasks.run_config import RunConfig


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_model_card(run: RunFolder, cfg: RunConfig, results: dict, metric: str) -> None:
    state = run.task_state()
    cls = TASKS.get(state["task"]).model_class
    model_class = getattr(getattr(cls, "transformers_class", cls), "__name__", "AutoModel")
    d, t = cfg.data, cfg.train
    lines = [
        f"# {cfg.name}", "",
        f"A `{state.get('task')}` model fine-tuned with graftkit from `{cfg.model.name_or_path}`.", "",
        "## Data", "",
        f"- train: `{d.train or (d.hub and d.hub.path)}` ({results['data']['train']} examples)",
        f"- validation: `{d.validation or 'split from train'}` ({results['data']['validation']} examples)",
        f"- test: `{d.test or 'split from train'}` ({results['data']['test']} examples)",
        f"- columns: text=`{d.text_column}`" + (f", pair=`{d.text_pair_column}`" if d.text_pair_column else "")
        + f", label=`{d.label_column}`; max_length={d.max_length}",
    ]
    lines += [f"- {n}" for n in results["data"]["notes"]]
    if "labels" in state:
        lines.append(f"- labels ({len(state['labels'])}): {', '.join(map(str, state['labels'][:50]))}"
                     + (" ..." if len(state["labels"]) > 50 else ""))
    lines += ["", "## Hyper-parameters", "", "| setting | value |", "| --- | --- |"]
    for k in ("epochs", "max_steps", "batch_size", "learning_rate", "optimizer", "weight_decay", "warmup",
              "scheduler", "grad_accum", "max_grad_norm", "precision", "seed", "group_by_length"):
        lines.append(f"| {k} | {getattr(t, k)} |")
    lines += [f"| selection metric | {metric} |", f"| dropout override | {cfg.model.dropout} |", ""]
    lines += ["## Results", "", "| split | metric | value |", "| --- | --- | --- |"]
    for split in ("validation", "test"):
        for k, v in (results.get(split) or {}).items():
            if isinstance(v, (int, float)) and k not in ("n", "predict_seconds"):
                lines.append(f"| {split} | {k} | {_fmt(v)} |")
    tm = results.get("train", {})
    if "train_samples_per_second" in tm:
        lines.append(f"| train | samples/second | {_fmt(tm['train_samples_per_second'])} |")
    lines += ["", "![training curve](plots/training_curve.png)", "",
              "![confusion matrix](plots/confusion_matrix.png)", "",
              "## Use", "", "```bash", f"graftkit predict {run.path} \"your text here\"", "```", "",
              "The folder is a plain transformers model folder as well:", "", "```python",
              f"from transformers import {model_class}",
              f"model = {model_class}.from_pretrained('{run.path}')", "```", ""]
    write_text(run.card, "\n".join(lines))
