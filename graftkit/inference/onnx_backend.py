"""The "onnx" inference backend: onnxruntime over the graph ``graftkit export`` wrote into a run folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from graftkit.errors import ExportError
from graftkit.inference.backends import BACKENDS
from graftkit.modeling.run_folder import onnx_path
from graftkit.tasks.base import Task


@BACKENDS.register("onnx")
class OnnxBackend:
    """Features → logits with onnxruntime on CPU.

    Args:
        run_dir: the run folder.
        task: its task (unused: the graph already returns logits).
        precision: "fp32" or "int8" (the quantized graph).
        path: an explicit .onnx file instead of the run folder's (used by the parity check).
        threads: intra-op threads (0 = onnxruntime's default, all cores).
    """

    def __init__(self, run_dir: Path, task: Task, precision: str = "fp32", path: str | Path | None = None,
                 threads: int = 0):
        import onnxruntime as ort  # lazy: only ONNX serving needs the runtime loaded

        file = Path(path) if path else onnx_path(run_dir, precision)
        if not file.is_file():
            flag = " --quantize int8" if precision == "int8" else ""
            raise ExportError(f"{file} not found; run `graftkit export {run_dir} --format onnx{flag}` first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.file = file

    def __call__(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return self.outputs(features)[0]

    def outputs(self, features: dict[str, np.ndarray],
                with_features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits, the graph's ``features`` output when ``with_features``; an export with an out-of-scope
        detector that reads features has one)."""
        if with_features and "features" not in self.output_names:
            raise ExportError(f"{self.file} returns no features, which this run's out-of-scope detector reads; "
                              "export the run again (`graftkit export RUN`)")
        names = ["logits", "features"] if with_features else ["logits"]
        results = self.session.run(names, self._feed(features))
        return results[0], (results[1] if with_features else None)

    def _feed(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {}
        for name in self.inputs:
            if name in features:
                feed[name] = np.asarray(features[name], dtype=np.int64)
            elif name == "token_type_ids":  # tokenizers that omit segment ids mean "all segment 0"
                feed[name] = np.zeros_like(np.asarray(features["input_ids"], dtype=np.int64))
            else:
                raise ExportError(f"{self.file}: the graph needs input '{name}' the task did not produce")
        return feed
