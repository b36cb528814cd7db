"""`graftkit predict RUN --input ... --output DIR --ray`: batch prediction as Ray Data actors.

Each actor loads the run's Predictor once; Ray Data reads the input (``read_json``/``read_csv``/
``read_parquet``/``read_text``), feeds ``map_batches`` over the actor pool, and writes JSON Lines shards
into ``DIR`` in input order, plus ``DIR/manifest.json`` (shards in order, row count, run fingerprint).
Each output line is what the single-process path writes: ``{"input": ..., **prediction}``. A local
Ray is started unless ``address`` joins an existing cluster (``auto``, ``ray://HOST:PORT``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graftkit.errors import DataError, GraftkitError
from graftkit.inference.predict_file import run_fingerprint
from graftkit.inference.predictor import Predictor
from graftkit.io import write_json

READERS = {".jsonl": "read_json", ".ndjson": "read_json", ".json": "read_json", ".csv": "read_csv",
           ".parquet": "read_parquet", ".pq": "read_parquet", ".txt": "read_text"}


class PredictActor:
    """One Ray actor: a Predictor loaded once, applied to each batch of rows."""

    def __init__(self, run_dir: str, backend: str, text_column: str, pair_column: str | None,
                 backend_kwargs: dict | None = None, source: str = ""):
        self.predictor = Predictor(run_dir, backend=backend, **(backend_kwargs or {}))
        self.text_column, self.pair_column, self.source = text_column, pair_column, source

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        texts = _texts(batch, self.text_column, self.source)
        inputs: list[Any] = list(zip(texts, _texts(batch, self.pair_column, self.source))) if self.pair_column \
            else texts
        lines = [json.dumps({"input": x, **p.to_dict()}, ensure_ascii=False)
                 for x, p in zip(inputs, self.predictor.predict_batch(inputs))]
        return {"text": lines}


def _texts(batch: dict[str, Any], column: str, source: str) -> list[str]:
    """The column's values, which must be text, as the single-process path requires (no silent ``str()``)."""
    values = list(batch[column])
    wrong = next((v for v in values if not isinstance(v, str)), None)
    if wrong is not None:
        raise DataError(source, f"'{column}' holds a {type(wrong).__name__} value ({wrong!r}), not text; every "
                        "input must be a string, as `graftkit predict --input` without --ray requires", field=column)
    return values


def predict_ray(run_dir: str | Path, input_path: str | Path, output_dir: str | Path, batch_size: int = 64,
                workers: int = 2, backend: str = "torch", address: str | None = None, overwrite: bool = False,
                backend_kwargs: dict | None = None) -> dict:
    """Predict every row of ``input_path`` with ``workers`` Ray actors into shards under ``output_dir``.

    Returns:
        the manifest (also ``output_dir/manifest.json``).
    Raises:
        GraftkitError: ``output_dir`` exists (without ``overwrite``), or the input's format is unknown.
    """
    import ray  # heavy optional dependency (the 'ray' extra): imported only for --ray
    from ray.data import DataContext

    input_path, out = Path(input_path), Path(output_dir)
    reader = READERS.get(input_path.suffix.lower())
    if reader is None:
        raise GraftkitError(f"{input_path}: --ray reads {', '.join(sorted(READERS))} files")
    if out.exists() and not overwrite:
        raise GraftkitError(f"{out} exists; choose another --output folder or pass --overwrite")
    probe = Predictor(run_dir, backend=backend, **(backend_kwargs or {}))  # fail fast here (run folder, backend) before any actor starts
    cfg = probe.cfg.data
    text_column = "text" if reader == "read_text" else cfg.text_column
    if not ray.is_initialized():  # a local Ray gets `workers` CPUs (at least 2): the actors and the read/write tasks
        ray.init(address=address, num_cpus=None if address else max(2, workers), include_dashboard=False,
                 log_to_driver=False)
    # the actors must leave a CPU to Ray Data's read and write tasks, or the pipeline waits forever
    actor_cpus = min(1.0, max(0.1, (ray.cluster_resources().get("CPU", 2) - 1) / workers))
    DataContext.get_current().execution_options.preserve_order = True  # shards hold the rows in input order
    ds = getattr(ray.data, reader)(str(input_path.resolve()))
    ds = ds.map_batches(PredictActor, fn_constructor_args=(str(Path(run_dir).resolve()), backend, text_column,
                                                           cfg.text_pair_column, backend_kwargs, str(input_path)),
                        batch_size=batch_size, concurrency=workers, num_cpus=actor_cpus, batch_format="numpy")
    staging = out.with_name(f".{out.name}.staging")
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    ds.write_json(str(staging))
    shards = sorted(p.name for p in staging.iterdir() if p.suffix == ".json")
    rows = 0
    for name in shards:  # Ray writes {"text": line} rows: unwrap them into plain JSON Lines shards
        lines = [json.loads(line)["text"] for line in (staging / name).read_text(encoding="utf-8").splitlines()]
        (staging / name).unlink()
        (staging / (Path(name).stem + ".jsonl")).write_text("".join(x + "\n" for x in lines), encoding="utf-8")
        rows += len(lines)
    manifest = {"input": str(input_path.resolve()), "run": run_fingerprint(probe), "rows": rows,
                "shards": [Path(n).stem + ".jsonl" for n in shards], "workers": workers, "batch_size": batch_size}
    write_json(staging / "manifest.json", manifest)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return manifest


def read_shards(output_dir: str | Path) -> list[dict]:
    """Every prediction of a ``--ray`` output folder, in input order (the manifest's shard order)."""
    out = Path(output_dir)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return [json.loads(line) for name in manifest["shards"]
            for line in (out / name).read_text(encoding="utf-8").splitlines()]
