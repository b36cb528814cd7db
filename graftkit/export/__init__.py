"""Deployment artifacts from a run folder: ONNX export, int8 quantization, parity check, pruning.

Names load lazily so ``graftkit --help`` does not import torch.
"""
from importlib import import_module

_WHERE = {"ExportError": "graftkit.errors", "export_onnx": "graftkit.export.onnx",
          "export_run": "graftkit.export.parity", "prune_run": "graftkit.export.prune",
          "EXPORT_FORMATS": "graftkit.export.formats"}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'graftkit.export' has no attribute {name!r}")
