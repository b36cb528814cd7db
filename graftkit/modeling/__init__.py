"""Backbone + head loading and the self-describing run folder."""
from graftkit.modeling.load import load_pretrained, resolve_model_path
from graftkit.modeling.run_folder import RunFolder

__all__ = ["load_pretrained", "resolve_model_path", "RunFolder"]
