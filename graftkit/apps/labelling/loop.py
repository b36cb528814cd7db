"""``graftkit label loop``: train on the labelled file, select the next rows, get them answered, merge, again.

Each round retrains the config's run on its labelled file (``data.train``) as it is now, records the run's
metrics against the number of labelled rows, selects the next ``k`` pool rows, and has them answered:
* ``--page``: the labelling page serves the round's sheet; the loop goes on once every row is answered;
* ``--oracle FILE``: answered from a file of gold labels for the pool (a simulation: only the selected rows'
  labels are ever read, so the strategy never sees the rest);
* neither: one round, then the sheet is left to answer (``graftkit label page`` / ``label import``).
Answers are merged with the same checks as ``graftkit label import``. The record of every round, and the
learning curve (metric against labelled rows), go to ``<out>/loop.json`` and ``<out>/learning_curve.png``; a
stopped loop continues where it was (a round whose sheet is written is not selected again).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from graftkit.apps.labelling.answers import import_answers, write_selection
from graftkit.apps.labelling.pool import RunParts, input_key
from graftkit.apps.labelling.select import select
from graftkit.apps.labelling.sheet import Sheet
from graftkit.data.dataset import Example
from graftkit.errors import GraftkitError
from graftkit.io import read_json, write_json
from graftkit.report.plots import curves_png
from graftkit.tasks.capabilities import ScoresLabels
from graftkit.tasks.run_config import load_config
from graftkit.train.arguments import selection_metric
from graftkit.train.trainer import train


@dataclass
class LoopSettings:
    pool: str
    k: int = 20
    strategy: str = "hybrid"
    rounds: int = 1
    oracle: str | None = None
    page: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    seed: int = 0


def label_loop(config: str | Path, out: str | Path, settings: LoopSettings,
               log: Callable[[str], None] = print) -> dict:
    """Run ``settings.rounds`` rounds of train → select → answer → merge; returns the loop's record."""
    if settings.oracle and settings.page:
        raise GraftkitError("label loop: give --oracle (answers from a file) or --page (answers in the browser), not both")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "loop.json"
    record = read_json(record_path) if record_path.is_file() else {"config": str(config), "rounds": []}
    for r in range(len(record["rounds"]), settings.rounds):
        cfg = load_config(config)  # again each round: the labelled file has grown
        run = train(cfg, overwrite=True, log=lambda m: None)
        parts = RunParts.open(run.path)
        metrics = run.read_metrics()
        split = "test" if "test" in metrics else "validation"
        metric = selection_metric(cfg, parts.task)
        entry = {"round": r, "labelled": metrics["data"]["train"], "split": split, "metric": metric,
                 "value": metrics.get(split, {}).get(metric), "accuracy": metrics.get(split, {}).get("accuracy")}
        log(f"round {r}: {entry['labelled']} labelled rows, {split} {metric}={entry['value']}")
        sheet = out / f"round-{r}.csv"
        if not sheet.is_file():
            chosen = select(str(run.path), settings.k, settings.strategy, settings.pool, log=log,
                            seed=settings.seed + r)
            write_selection(chosen, sheet, cfg.data)
        if not (settings.oracle or settings.page):
            log(f"answer {sheet} (graftkit label page {sheet} {run.path}), then: graftkit label import {sheet} "
                f"{run.path}, then run the loop again")
            record["rounds"].append({**entry, "sheet": str(sheet)})
            break
        if settings.oracle:
            answer_from_oracle(sheet, settings.oracle, parts)
        else:
            answer_in_page(sheet, run.path, settings, log)
        merged = import_answers(str(sheet), run.path)
        record["rounds"].append({**entry, "sheet": str(sheet), "merged": merged["merged"]})
        write_json(record_path, record)
    write_json(record_path, record)
    _plot(record, out / "learning_curve.png")
    return record


def answer_from_oracle(sheet_path: Path, oracle: str, parts: RunParts) -> int:
    """Fill the sheet's label column from the oracle file (same text columns, gold labels); returns how many."""
    gold_rows, _ = parts.task.read(oracle, parts.cfg.data)
    gold = {input_key(e): e.label for e in gold_rows}
    labels = parts.task.capability(ScoresLabels, "label loop")
    sheet = Sheet(sheet_path, labels.labels, parts.cfg.data)
    answered = 0
    for i, row in enumerate(sheet.rows):
        key = input_key(_example(row, sheet))
        if key not in gold:
            raise GraftkitError(f"label loop --oracle: {oracle} has no label for the selected row {row[sheet.text_column]!r}")
        label = gold[key]
        sheet.answer(i, "|".join(label) if isinstance(label, (list, tuple)) else str(label))
        answered += 1
    return answered


def _example(row: dict, sheet: Sheet) -> Example:
    return Example(row[sheet.text_column], text_pair=row.get(sheet.pair_column) if sheet.pair_column else None)


def answer_in_page(sheet_path: Path, run_dir: Path, settings: LoopSettings, log: Callable[[str], None]) -> None:
    """Serve the labelling page for this round's sheet until every row has an answer."""
    import uvicorn

    from graftkit.apps.labelling.page import labelling_app

    app = labelling_app(sheet_path, run_dir)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    log(f"label the rows at http://{settings.host}:{settings.port}/ (the loop goes on once all are answered)")
    labels = RunParts.open(run_dir).task.capability(ScoresLabels, "label loop").labels
    try:
        while thread.is_alive():
            view = Sheet(sheet_path, labels, RunParts.open(run_dir).cfg.data).view()
            if view["answered"] == view["total"]:
                break
            time.sleep(0.5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _plot(record: dict, path: Path) -> None:
    points = [(r["labelled"], r["value"]) for r in record["rounds"] if r.get("value") is not None]
    if points:
        metric = record["rounds"][-1]["metric"]
        curves_png({"this loop": points}, "labelled rows", metric, f"{metric} by labelled rows", path)
