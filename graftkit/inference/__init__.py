"""Inference over any run folder (full, adapter, bottleneck, ensemble) with the torch or ONNX back-end."""
