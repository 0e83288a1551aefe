"""Native frontend: xpuruntime ops on any DLPack array (numpy on the CPU, torch,
jax, cupy). Results come back in the caller's array type, zero-copy.

Every op here calls the same C++ entry point as the JAX, torch and ONNX Runtime
frontends; ``policy=`` picks the kernel policy and ``stream=`` the CUDA stream.
"""

from __future__ import annotations

from typing import Any

from . import _arrays
from ._native import core
from ._policy import resolve_policy


def rms_norm(x: Any, weight: Any, eps: float = 1e-6, *, residual: Any = None,
             policy: str | None = None, stream: Any = None) -> Any:
    """RMS normalization over the last axis.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight: ``[N]``, x's dtype.
      eps: added to the mean square.
      residual: optional, x's shape and dtype; normalizes ``h = x + residual``.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object); see ``_arrays.stream_handle``.

    Returns:
      ``y`` (x's shape and dtype), or ``(y, h)`` when ``residual`` is given.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    h = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s) if residual is not None else None
    core.rms_norm_forward(x, weight, residual, y, h, None, float(eps), resolve_policy(policy), s)
    if residual is None:
        return _arrays.as_framework(y, x)
    return _arrays.as_framework(y, x), _arrays.as_framework(h, x)


def rms_norm_backward(dy: Any, x: Any, weight: Any, eps: float = 1e-6, *, dh: Any = None,
                      policy: str | None = None, stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``rms_norm`` (no residual, or with ``x`` = h and ``dh`` its incoming gradient).

    Args:
      dy: ``[..., N]``, the gradient of y.
      x: ``[..., N]``, the forward input (h when a residual was added).
      weight: ``[N]``.
      dh: optional ``[..., N]`` gradient flowing into the h output.

    Returns:
      ``(dx, dweight)``; dx is also the residual's gradient when a residual was used.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    rows = 1
    for d in info.shape[:-1]:
        rows *= d
    n = info.shape[-1] if info.shape else 0
    pol = resolve_policy(policy)
    # The forward's rstd is recomputed here: the native API keeps no autograd state.
    y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    rstd = _arrays.empty_like_framework(x, (rows,), "float32", info, s)
    core.rms_norm_forward(x, weight, None, y, None, rstd, float(eps), pol, s)
    dx = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    dw = _arrays.empty_like_framework(x, (n,), _arrays.array_info(weight).dtype, info, s)
    ws = _arrays.empty_like_framework(
        x, (core.rms_norm_backward_workspace_bytes(rows, n),), "uint8", info, s)
    core.rms_norm_backward(dy, x, weight, rstd, dh, dx, dw, ws, pol, s)
    return _arrays.as_framework(dx, x), _arrays.as_framework(dw, x)


def _rows_and_n(shape: tuple) -> tuple[int, int]:
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows, (shape[-1] if shape else 0)


def layer_norm(x: Any, weight: Any, bias: Any, eps: float = 1e-5, *, return_stats: bool = False,
               policy: str | None = None, stream: Any = None) -> Any:
    """Layer normalization over the last axis.

    ``y = (x - mean) * rsqrt(var + eps) * weight + bias`` with ``mean`` and the
    population variance ``var`` taken over the last axis, in f32 arithmetic.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight: ``[N]``, x's dtype.
      bias: ``[N]``, x's dtype.
      eps: added to the variance.
      return_stats: also return the per-row ``mean`` and ``rstd = rsqrt(var + eps)``
        (float32, one per row of ``x`` flattened to ``[rows, N]``), as saved for the
        backward pass.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object); see ``_arrays.stream_handle``.

    Returns:
      ``y`` (x's shape and dtype), or ``(y, mean, rstd)`` with ``return_stats``.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    mean = rstd = None
    if return_stats:
        rows, _ = _rows_and_n(info.shape)
        mean = _arrays.empty_like_framework(x, (rows,), "float32", info, s)
        rstd = _arrays.empty_like_framework(x, (rows,), "float32", info, s)
    core.layer_norm_forward(x, weight, bias, y, mean, rstd, float(eps), resolve_policy(policy), s)
    if not return_stats:
        return _arrays.as_framework(y, x)
    return (_arrays.as_framework(y, x), _arrays.as_framework(mean, x),
            _arrays.as_framework(rstd, x))


def layer_norm_backward(dy: Any, x: Any, weight: Any, eps: float = 1e-5, *, mean: Any = None,
                        rstd: Any = None, policy: str | None = None,
                        stream: Any = None) -> tuple[Any, Any, Any]:
    """Gradients of ``layer_norm``.

    Args:
      dy: ``[..., N]``, the gradient of y (x's dtype).
      x: ``[..., N]``, the forward input.
      weight: ``[N]``.
      eps: the forward's eps (used only when ``mean``/``rstd`` are recomputed).
      mean, rstd: optional float32 ``[rows]`` statistics from
        ``layer_norm(..., return_stats=True)``; recomputed from ``x`` when absent.

    Returns:
      ``(dx, dweight, dbias)``; the parameter gradients are accumulated in f32 in a
      fixed order (deterministic) and returned in weight's dtype.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    rows, n = _rows_and_n(info.shape)
    pol = resolve_policy(policy)
    if (mean is None) != (rstd is None):
        raise ValueError("layer_norm_backward: pass both 'mean' and 'rstd', or neither")
    if mean is None:
        # The native API keeps no autograd state: recompute the statistics. They do
        # not depend on bias, so weight stands in for it and y is discarded.
        y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
        mean = _arrays.empty_like_framework(x, (rows,), "float32", info, s)
        rstd = _arrays.empty_like_framework(x, (rows,), "float32", info, s)
        core.layer_norm_forward(x, weight, weight, y, mean, rstd, float(eps), pol, s)
    wdtype = _arrays.array_info(weight).dtype
    dx = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    dw = _arrays.empty_like_framework(x, (n,), wdtype, info, s)
    db = _arrays.empty_like_framework(x, (n,), wdtype, info, s)
    ws = _arrays.empty_like_framework(x, (core.layer_norm_backward_workspace_bytes(rows, n),), "uint8", info, s)
    core.layer_norm_backward(dy, x, weight, mean, rstd, dx, dw, db, ws, pol, s)
    return (_arrays.as_framework(dx, x), _arrays.as_framework(dw, x),
            _arrays.as_framework(db, x))


def softmax(x: Any, *, scale: float = 1.0, policy: str | None = None, stream: Any = None) -> Any:
    """Softmax over the last axis: ``y = exp(s - max(s)) / sum(exp(s - max(s)))``, ``s = scale * x``.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      scale: multiplies ``x`` before the softmax (e.g. ``1 / sqrt(d)`` for attention scores).
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object); see ``_arrays.stream_handle``.

    Returns:
      ``y``, x's shape and dtype.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    core.softmax_forward(x, y, float(scale), resolve_policy(policy), s)
    return _arrays.as_framework(y, x)


def softmax_backward(dy: Any, y: Any, *, scale: float = 1.0, policy: str | None = None,
                     stream: Any = None) -> Any:
    """Gradient of ``softmax``: ``dx = scale * y * (dy - sum(dy * y, -1))``.

    Args:
      dy: ``[..., N]``, the gradient of y; y's dtype.
      y: ``[..., N]``, the forward output (float32, float16 or bfloat16).
      scale: the forward's ``scale``.

    Returns:
      ``dx``, y's shape and dtype.
    """
    info = _arrays.array_info(y)
    s = _arrays.stream_handle(stream, y, info)
    dx = _arrays.empty_like_framework(y, info.shape, info.dtype, info, s)
    core.softmax_backward(dy, y, dx, float(scale), resolve_policy(policy), s)
    return _arrays.as_framework(dx, y)


def _glu(fwd: Any, gate: Any, up: Any, policy: str | None, stream: Any) -> Any:
    info = _arrays.array_info(gate)
    s = _arrays.stream_handle(stream, gate, info)
    y = _arrays.empty_like_framework(gate, info.shape, info.dtype, info, s)
    fwd(gate, up, y, resolve_policy(policy), s)
    return _arrays.as_framework(y, gate)


def _glu_backward(bwd: Any, dy: Any, gate: Any, up: Any, policy: str | None,
                  stream: Any) -> tuple[Any, Any]:
    info = _arrays.array_info(gate)
    s = _arrays.stream_handle(stream, gate, info)
    dgate = _arrays.empty_like_framework(gate, info.shape, info.dtype, info, s)
    dup = _arrays.empty_like_framework(gate, info.shape, info.dtype, info, s)
    bwd(dy, gate, up, dgate, dup, resolve_policy(policy), s)
    return _arrays.as_framework(dgate, gate), _arrays.as_framework(dup, gate)


def swiglu(gate: Any, up: Any, *, policy: str | None = None, stream: Any = None) -> Any:
    """SwiGLU: ``y = silu(gate) * up``, ``silu(g) = g * sigmoid(g)``, elementwise.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      up: gate's shape and dtype.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object).

    Returns:
      ``y``, gate's shape and dtype.
    """
    return _glu(core.swiglu_forward, gate, up, policy, stream)


def swiglu_backward(dy: Any, gate: Any, up: Any, *, policy: str | None = None,
                    stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``swiglu``: ``dgate = dy * up * silu'(gate)``, ``dup = dy * silu(gate)``.

    Args:
      dy: ``[..., N]``, the gradient of y; gate's shape and dtype.
      gate, up: the forward inputs, ``[..., N]``, one dtype.

    Returns:
      ``(dgate, dup)``, gate's shape and dtype.
    """
    return _glu_backward(core.swiglu_backward, dy, gate, up, policy, stream)


def geglu(gate: Any, up: Any, *, policy: str | None = None, stream: Any = None) -> Any:
    """GeGLU: ``y = gelu_tanh(gate) * up``, elementwise, with
    ``gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))``.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      up: gate's shape and dtype.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object).

    Returns:
      ``y``, gate's shape and dtype.
    """
    return _glu(core.geglu_forward, gate, up, policy, stream)


def geglu_backward(dy: Any, gate: Any, up: Any, *, policy: str | None = None,
                   stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``geglu``: ``dgate = dy * up * gelu_tanh'(gate)``, ``dup = dy * gelu_tanh(gate)``.

    Args:
      dy: ``[..., N]``, the gradient of y; gate's shape and dtype.
      gate, up: the forward inputs, ``[..., N]``, one dtype.

    Returns:
      ``(dgate, dup)``, gate's shape and dtype.
    """
    return _glu_backward(core.geglu_backward, dy, gate, up, policy, stream)


def rope(x: Any, cos: Any, sin: Any, *, interleaved: bool = False, policy: str | None = None,
         stream: Any = None) -> Any:
    """Rotary position embedding.

    ``interleaved=False`` (NeoX / Llama, rotate-half): with ``x1 = x[..., :D/2]`` and
    ``x2 = x[..., D/2:]``, ``y1 = x1 cos - x2 sin`` and ``y2 = x2 cos + x1 sin``.
    ``interleaved=True`` (GPT-J): each pair ``(x[2i], x[2i+1])`` rotates by angle ``i``.
    f32 arithmetic.

    Args:
      x: ``[B, S, H, D]`` float32, float16 or bfloat16, ``D`` even; rows of ``D`` may be
        strided (last dimension contiguous).
      cos: ``[S, D/2]``, float32 or x's dtype, broadcast over ``B`` and ``H``.
      sin: ``[S, D/2]``, cos's dtype.
      interleaved: the pair layout (see above).
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object); see ``_arrays.stream_handle``.

    Returns:
      ``y``, x's shape and dtype.
    """
    info = _arrays.array_info(x)
    s = _arrays.stream_handle(stream, x, info)
    y = _arrays.empty_like_framework(x, info.shape, info.dtype, info, s)
    core.rope_forward(x, cos, sin, y, bool(interleaved), resolve_policy(policy), s)
    return _arrays.as_framework(y, x)


def rope_backward(dy: Any, cos: Any, sin: Any, *, interleaved: bool = False,
                  policy: str | None = None, stream: Any = None) -> Any:
    """Gradient of ``rope`` with respect to ``x``: ``dy`` rotated by the negative angle.

    Args:
      dy: ``[B, S, H, D]``, the gradient of y (float32, float16 or bfloat16).
      cos, sin: the forward's ``[S, D/2]`` tables (float32 or dy's dtype).
      interleaved: the forward's layout.

    Returns:
      ``dx``, dy's shape and dtype. (cos and sin get no gradient.)
    """
    info = _arrays.array_info(dy)
    s = _arrays.stream_handle(stream, dy, info)
    dx = _arrays.empty_like_framework(dy, info.shape, info.dtype, info, s)
    core.rope_backward(dy, cos, sin, dx, bool(interleaved), resolve_policy(policy), s)
    return _arrays.as_framework(dx, dy)


def _scalar_f32_like(value: float, like: Any, info: _arrays.ArrayInfo) -> Any:
    """A 0-d float32 array holding ``value`` on ``like``'s device (numpy or torch)."""
    fw = _arrays._framework(like)
    if fw == "numpy":
        import numpy as np
        return np.full((), value, dtype=np.float32)
    if fw == "torch":
        import sys
        torch = sys.modules["torch"]
        device = "cpu" if info.device_kind == "cpu" else f"cuda:{info.device_index}"
        return torch.full((), float(value), dtype=torch.float32, device=device)
    raise TypeError("cross_entropy_backward: pass 'dloss' as a float32 array for "
                    f"{type(like)!r} logits")


def cross_entropy(logits: Any, labels: Any, *, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean",
                  return_lse: bool = False, policy: str | None = None,
                  stream: Any = None) -> Any:
    """Cross-entropy of ``logits`` against integer ``labels`` (softmax over the last axis).

    Per row ``l_t = lse_t - (1 - ls) * logits[t, label_t] - ls * mean_v(logits[t, v])``
    with ``lse_t = log(sum_v exp(logits[t, v]))`` and ``ls = label_smoothing``; rows whose
    label is ``ignore_index`` give 0 and do not count. f32 arithmetic, fixed-order
    (deterministic) reductions.

    Args:
      logits: ``[T, V]`` (more generally ``[..., V]``) float32, float16 or bfloat16.
      labels: ``[T]`` (logits' leading shape), int32 or int64. A label outside ``[0, V)``
        other than ``ignore_index`` raises on the CPU; on CUDA its row's loss is NaN.
      ignore_index: label value of rows to skip.
      label_smoothing: ``ls`` in ``[0, 1]``.
      reduction: ``"mean"`` (over counted rows; NaN when none count), ``"sum"`` or ``"none"``.
      return_lse: also return ``lse`` (float32, labels' shape; 0 for ignored rows), as
        saved for the backward pass.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).
      stream: CUDA stream (int handle or ``__cuda_stream__`` object); see ``_arrays.stream_handle``.

    Returns:
      ``loss``: float32, 0-d for ``"mean"`` / ``"sum"``, labels' shape for ``"none"``;
      or ``(loss, lse)`` with ``return_lse``.
    """
    info = _arrays.array_info(logits)
    linfo = _arrays.array_info(labels)
    s = _arrays.stream_handle(stream, logits, info)
    rows, _ = _rows_and_n(info.shape)
    ws_bytes = core.cross_entropy_forward_workspace_bytes(rows, reduction)  # checks reduction
    loss_shape = linfo.shape if reduction == "none" else ()
    loss = _arrays.empty_like_framework(logits, loss_shape, "float32", info, s)
    lse = _arrays.empty_like_framework(logits, linfo.shape, "float32", info, s)
    ws = _arrays.empty_like_framework(logits, (ws_bytes,), "uint8", info, s) if ws_bytes else None
    core.cross_entropy_forward(logits, labels, loss, lse, ws, int(ignore_index),
                               float(label_smoothing), reduction, resolve_policy(policy), s)
    if not return_lse:
        return _arrays.as_framework(loss, logits)
    return _arrays.as_framework(loss, logits), _arrays.as_framework(lse, logits)


def cross_entropy_backward(dloss: Any, logits: Any, labels: Any, *, lse: Any = None,
                           ignore_index: int = -100, label_smoothing: float = 0.0,
                           reduction: str = "mean", policy: str | None = None,
                           stream: Any = None) -> Any:
    """Gradient of ``cross_entropy`` with respect to ``logits``.

    ``dlogits[t, v] = g_t * (softmax(t, v) - (1 - ls) * [v == label_t] - ls / V)`` with
    ``g_t = dloss`` (sum), ``dloss / count`` (mean) or ``dloss[t]`` (none), and 0 for
    ignored rows. The softmax is recomputed from ``logits`` and ``lse``.

    Args:
      dloss: the gradient of the loss, float32: 0-d (or a Python float) for ``"mean"`` /
        ``"sum"``, labels' shape for ``"none"``.
      logits: ``[T, V]``, the forward input.
      labels: ``[T]``, the forward labels (int32 or int64).
      lse: optional float32 ``[T]`` from ``cross_entropy(..., return_lse=True)``;
        recomputed when absent.
      ignore_index, label_smoothing, reduction: the forward's.

    Returns:
      ``dlogits``, logits' shape and dtype.
    """
    info = _arrays.array_info(logits)
    s = _arrays.stream_handle(stream, logits, info)
    rows, _ = _rows_and_n(info.shape)
    pol = resolve_policy(policy)
    ws_bytes = core.cross_entropy_backward_workspace_bytes(rows, reduction)  # checks reduction
    if isinstance(dloss, (int, float)):
        dloss = _scalar_f32_like(float(dloss), logits, info)
    if lse is None:
        # The native API keeps no autograd state: recompute lse (loss is discarded).
        _, lse = cross_entropy(logits, labels, ignore_index=ignore_index,
                               label_smoothing=label_smoothing, reduction="none",
                               return_lse=True, policy=pol, stream=stream)
    dx = _arrays.empty_like_framework(logits, info.shape, info.dtype, info, s)
    ws = _arrays.empty_like_framework(logits, (ws_bytes,), "uint8", info, s) if ws_bytes else None
    core.cross_entropy_backward(dloss, logits, labels, lse, dx, ws, int(ignore_index),
                                float(label_smoothing), reduction, pol, s)
    return _arrays.as_framework(dx, logits)
