"""Preference pairs for data-to-text from a generating run: the reference is chosen; the rejected completion is
the run's own output where the slot-error check (graftkit/data/slots.py) finds a missing,
wrong or added slot in it, else the reference with one planted slot error (a wrong value or another venue's name).

The rows are what `task.type: preference` (DPO) and `task.type: reward` read: ``prompt``, ``chosen``,
``rejected``, plus ``source`` (model / planted) and the rejected text's slot errors.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from graftkit.data.dataset import read_examples
from graftkit.errors import GraftkitError
from graftkit.inference.runs import open_run
from graftkit.io import write_jsonl
from graftkit.data import slots


def build_pairs(run_dir: str | Path, data: str | Path, out: str | Path, seed: int = 0, batch_size: int = 16,
                progress: Callable[[int], None] | None = None) -> dict:
    """Write preference pairs for every labelled row of ``data`` (read with the run's columns) to ``out`` (JSONL).

    Returns:
        counts: rows, from_model (the run's output had a slot error), planted, skipped (no slot to plant an
        error in, and the run's output had none).

    Raises:
        GraftkitError: the prompts are not meaning representations (no slot error rate to judge outputs by).
        UnsupportedError: the run does not generate.
    """
    runner = open_run(run_dir, command="generate")
    examples, _ = read_examples(str(data), runner.cfg.data, reader=runner.task.read)
    inputs = [runner.task.input_of(e) for e in examples]
    if not slots.is_data_to_text(inputs):
        raise GraftkitError(f"pairs: the prompts of {data} are not meaning representations (slot[value], ...); "
                            "the slot-error check that picks rejected outputs needs them")
    outputs = [p.generated.strip() for p in runner.predict(inputs, batch_size, progress=progress)]
    mrs = [slots.parse_mr(x) for x in inputs]
    known = sorted({v for mr in mrs for s, v in mr if s in slots.NAME_SLOTS})
    rng, rows, counts = random.Random(seed), [], {"rows": len(examples), "from_model": 0, "planted": 0, "skipped": 0}
    for e, mr, output in zip(examples, mrs, outputs):
        errors = slots.check(mr, output, known)
        if errors.errors and output != e.label.strip():
            rejected, source = output, "model"
        else:
            rejected, source = slots.plant_error(mr, e.label, known, rng), "planted"
            errors = slots.check(mr, rejected, known) if rejected else errors
        if rejected is None:
            counts["skipped"] += 1
            continue
        counts["from_model" if source == "model" else "planted"] += 1
        rows.append({"prompt": e.text, "chosen": e.label, "rejected": rejected, "source": source,
                     "rejected_errors": {"missing": errors.missing, "wrong": errors.wrong, "added": errors.added}})
    write_jsonl(out, rows)
    return counts
