"""Deployment artifacts from a run folder: ONNX export, int8 quantization, parity check, pruning."""
from graftkit.export.onnx import ExportError, export_onnx
from graftkit.export.parity import export_run

__all__ = ["ExportError", "export_onnx", "export_run"]
