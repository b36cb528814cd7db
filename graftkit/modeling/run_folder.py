"""The self-describing run folder that every stage after training reads.

Layout::

    runs/<name>/
      config.json, model.safetensors, tokenizer*  plain transformers folder (from_pretrained works)
      labels.json        task type and fitted task state (labels, thresholds, ...)
      config.yaml        resolved graftkit config, headed by format_version (graftkit/modeling/run_format.py)
      metrics.json       validation/test metrics;  history.json  Trainer log history
      plots/             confusion_matrix.png, training_curve.png
      predictions/       test_predictions.jsonl, misclassified.csv
      test_split.jsonl   the test examples as evaluated (export's parity check reads them, not the data files)
      README.md          model card
      checkpoints/       Trainer checkpoints (resume);  logs/  TensorBoard
      COMPLETE           written last: the run finished
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from graftkit.data.dataset import Example, example_from_json, example_to_json
from graftkit.errors import ExportError, RunFolderError
from graftkit.io import locked_update, read_json, staging_path, write_json, write_jsonl, write_text
from graftkit.modeling.run_format import read_config_tree, read_ensemble_spec

#: where `graftkit export` puts its graphs inside a run folder, per precision
ONNX_DIR = "onnx"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def onnx_path(run_dir: str | Path, precision: str = "fp32") -> Path:
    """Where ``graftkit export`` puts the graph of ``precision`` (fp32 or int8) inside a run folder."""
    if precision not in ONNX_FILES:
        raise ExportError(f"unknown ONNX precision '{precision}' (choose {', '.join(ONNX_FILES)})")
    return Path(run_dir) / ONNX_DIR / ONNX_FILES[precision]


@dataclass
class RunFolder:
    path: Path
    #: where the folder will be published when it is being built in a staging folder (training builds
    #: ``.<name>.partial`` next to ``<name>``): the path a model card tells users to load
    final_path: Path | None = None

    def __post_init__(self):
        self.path = Path(self.path)
        self.final_path = Path(self.final_path) if self.final_path else None

    @property
    def public_path(self) -> Path:
        return self.final_path or self.path

    # well-known places
    labels = property(lambda self: self.path / "labels.json")
    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.json")
    history = property(lambda self: self.path / "history.json")
    plots = property(lambda self: self.path / "plots")
    predictions = property(lambda self: self.path / "predictions")
    checkpoints = property(lambda self: self.path / "checkpoints")
    logs = property(lambda self: self.path / "logs")
    card = property(lambda self: self.path / "README.md")
    test_split = property(lambda self: self.path / "test_split.jsonl")
    complete_marker = property(lambda self: self.path / "COMPLETE")

    @property
    def is_complete(self) -> bool:
        return self.complete_marker.is_file()

    def require_model(self) -> "RunFolder":
        """Raise a readable error unless this folder holds a loadable model."""
        if not self.path.is_dir():
            building = staging_path(self.path)
            hint = f" (training is still building it in {building}; `graftkit train CONFIG --resume` continues " \
                "an interrupted run)" if building.is_dir() else ""
            raise RunFolderError(f"run folder not found: {self.path}{hint}")
        missing = [n for n in ("config.json", "labels.json") if not (self.path / n).is_file()]
        if not any(self.path.glob("*.safetensors")) and not any((self.path / n).is_file()
                                                               for n in ("adapter_config.json", "ensemble.json")):
            missing.append("model.safetensors")
        if missing:
            hint = " (training has not finished; `graftkit train CONFIG --resume` continues it)" \
                if self.checkpoints.is_dir() else ""
            raise RunFolderError(f"{self.path} is not a finished run folder: missing {', '.join(missing)}{hint}")
        return self

    def config_tree(self) -> dict:
        """config.yaml in today's format: an older folder's is migrated (graftkit/modeling/run_format.py)."""
        return read_config_tree(self.path)

    def ensemble_spec(self) -> dict:
        """An ensemble folder's ensemble.json in today's format (members, combine and its settings)."""
        return read_ensemble_spec(self.path)

    def task_state(self) -> dict:
        return read_json(self.labels)

    def write_task_state(self, task_type: str, state: dict) -> None:
        write_json(self.labels, {"task": task_type, **state})

    def read_metrics(self) -> dict:
        return read_json(self.metrics) if self.metrics.is_file() else {}

    def update_metrics(self, **sections) -> dict:
        """Replace ``sections`` of metrics.json, keeping the others; locked, so two commands updating the same
        run at once (evaluate and calibrate, say) do not drop each other's sections."""
        with locked_update(self.metrics):
            data = self.read_metrics()
            data.update(sections)
            write_json(self.metrics, data)
        return data

    def add_metrics_entry(self, section: str, key: str, entry: dict) -> dict:
        """Set ``metrics.json[section][key]``, keeping the section's other entries; the read is inside the lock,
        so two commands adding entries at once (two evaluates) both keep theirs."""
        with locked_update(self.metrics):
            data = self.read_metrics()
            data.setdefault(section, {})[key] = entry
            write_json(self.metrics, data)
        return data

    def write_test_split(self, examples: list[Example]) -> None:
        """Store the test examples, so export checks parity from the run folder alone."""
        write_jsonl(self.test_split, [example_to_json(e) for e in examples])

    def read_test_split(self) -> list[Example] | None:
        """The stored test examples, or None for a run folder written before they were stored."""
        if not self.test_split.is_file():
            return None
        return [example_from_json(json.loads(line)) for line in self.test_split.read_text(encoding="utf-8").splitlines()
                if line.strip()]

    def mark_complete(self) -> None:
        write_text(self.complete_marker, "ok\n")
