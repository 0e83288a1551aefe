"""PyTorch frontend: xpuruntime ops registered with ``torch.library`` as
``torch.ops.xpuruntime.*``, with fake kernels (torch.compile, meta tensors) and
autograd, all generated from the core's op specs. Tensors reach the C++ core
through DLPack, zero-copy, and kernels run on torch's current CUDA stream.
Nothing here builds against torch's C++ ABI.

Modules, one job each: ``_registration`` (every spec as a torch op: schema, real
and fake kernel), ``_autograd`` (generic autograd glue; per-op glue in
``_grad/<op>.py``), ``_layouts`` (which layouts are copied), ``_functions`` (the
public ops), ``_fused_linear_cross_entropy`` and ``_onnx`` (torch -> ONNX export).
"""

from __future__ import annotations

from ..._extras import require

require("torch", "torch")

from . import _registration, _autograd  # noqa: E402,F401  (registers the ops, then autograd)
from ._functions import (cross_entropy, geglu, layer_norm, rms_norm, rope, softmax,  # noqa: E402
                         swiglu, topk_softmax)
from ._fused_linear_cross_entropy import fused_linear_cross_entropy  # noqa: E402
from ._onnx import export_onnx, onnx_translation_table  # noqa: E402  (onnxscript on first use)

__all__ = ["cross_entropy", "export_onnx", "fused_linear_cross_entropy", "geglu", "layer_norm",
           "onnx_translation_table", "rms_norm", "rope", "softmax", "swiglu", "topk_softmax"]
