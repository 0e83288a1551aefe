"""Bridges to other frameworks: ``torch``, ``onnxruntime`` (each imported on demand)."""
