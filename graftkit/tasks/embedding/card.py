"""Model card (README.md) of an embedding run: data, settings, retrieval results, how to use it."""
from __future__ import annotations

from graftkit.io import write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import CardMetadata


def write_card(run: RunFolder, cfg, results: dict, task) -> None:
    """Replace the card sentence-transformers wrote with graftkit's (same facts as other runs)."""
    d, t = cfg.data, cfg.train
    how = (f"(`{d.text_column}`, `{d.text_pair_column}`) pairs" if not task.label_mode
           else f"rows of `{d.text_column}` sharing a `{d.label_column}` value")
    lines = [f"# {cfg.name}", "",
             f"A sentence embedder fine-tuned with graftkit from `{cfg.model.name_or_path}` on {how}, with "
             "sentence-transformers' MultipleNegativesRankingLoss (in-batch negatives).", "",
             "## Data", "",
             f"- train: `{d.train}` ({results['data']['train']} rows, {results['data']['train_pairs']} pairs)",
             f"- validation: `{d.validation or 'split from train'}` ({results['data']['validation']} rows)",
             f"- test: `{d.test or 'split from train'}` ({results['data']['test']} rows)",
             *(f"- {n}" for n in results["data"]["notes"]), "",
             "## Hyper-parameters", "", "| setting | value |", "| --- | --- |",
             *(f"| {k} | {getattr(t, k)} |" for k in ("epochs", "max_steps", "batch_size", "learning_rate",
                                                      "warmup", "scheduler", "seed")),
             f"| max_length | {d.max_length} |", "",
             "## Retrieval results", "",
             "Queries are the split's texts, the corpus is the training set "
             + ("(relevant: same label)." if task.label_mode else "plus every positive (relevant: own positive)."),
             "", "| split | metric | value |", "| --- | --- | --- |"]
    for split in ("validation", "test"):
        for k, v in (results.get(split) or {}).items():
            lines.append(f"| {split} | {k} | {v:.4f} |" if isinstance(v, float) else f"| {split} | {k} | {v} |")
    lines += ["", "## Use", "", *task.capability(CardMetadata, "train").usage(run.public_path)]
    write_text(run.card, "\n".join(lines))
