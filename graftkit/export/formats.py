"""Export formats: name → function(run_dir, **options) -> report. `graftkit export --format NAME` looks here."""
from __future__ import annotations

from graftkit.export.parity import export_run
from graftkit.registry import Registry

EXPORT_FORMATS = Registry("export format")
EXPORT_FORMATS.register("onnx")(export_run)  # ONNX fp32 (+ int8) with the parity gate
