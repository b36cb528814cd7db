"""Fine-tune a sentence embedder with sentence-transformers' trainer and write a graftkit run folder."""
from __future__ import annotations

from graftkit.data.dataset import Splits, load_splits
from graftkit.io import read_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.report.plots import training_curve_png
from graftkit.tasks.common.bi_encoder import fit_bi_encoder
from graftkit.tasks.embedding import metrics, preprocess
from graftkit.tasks.embedding.card import write_card


def evaluate_splits(model, task, splits: Splits, batch_size: int) -> dict:
    """Retrieval metrics for validation and test queries against the training corpus (see preprocess)."""
    out = {}
    for name, queries in (("validation", splits.validation), ("test", splits.test)):
        if queries:
            data = preprocess.retrieval_set(queries, splits.train, task.label_mode)
            out[name] = metrics.retrieval_scores(model, data, name, batch_size)
    return out


def train_embedding(task, session) -> RunFolder:
    """Train a bi-encoder with MultipleNegativesRankingLoss, evaluate retrieval, write a complete run folder.

    Args:
        task: the EmbeddingTask.
        session: the train layer's TrainSession (config, run folder, arguments, stop handling).

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    cfg, log = session.cfg, session.log
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                         from_rows=task.examples_from_rows)
    task.fit(splits.train)
    run, checkpoint = session.prepare_run_dir()
    for note in splits.notes:
        log(note)
    anchors, positives, skipped = preprocess.training_pairs(splits.train, task.label_mode, cfg.train.seed)
    if skipped:
        log(f"{skipped} training rows have a label no other row shares; they cannot form a pair and are skipped")
    log(f"examples: train pairs={len(anchors)} validation={len(splits.validation)} test={len(splits.test)}")
    model, result = fit_bi_encoder(session, run, checkpoint, splits, {"anchor": anchors, "positive": positives})
    run.write_task_state(task.name, task.state())
    results = {"train": dict(result.metrics), "data": {
        "train": len(splits.train), "train_pairs": len(anchors), "validation": len(splits.validation),
        "test": len(splits.test), "dropped_rows": splits.dropped, "notes": splits.notes}}
    results.update(evaluate_splits(model, task, splits, cfg.eval.batch_size))
    for name in ("validation", "test"):
        if name in results:
            log(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in results[name].items() if isinstance(v, float)))
    if cfg.eval.plots:
        training_curve_png(read_json(run.history), "loss", run.plots / "training_curve.png")
    run.update_metrics(**results)
    write_card(run, cfg, results, task)
    run.mark_complete()
    return run
