"""Native frontend: xpuruntime ops on any DLPack array (numpy on the CPU, torch,
jax, cupy). Results come back in the caller's array type, zero-copy.

Every op here calls the same C++ entry point as the JAX, torch and ONNX Runtime
frontends; ``policy=`` picks the kernel policy and ``stream=`` the CUDA stream.
The functions are one generic call over the op spec (``_spec.py``): outputs and
workspace are allocated from its shape and dtype rules, so no rule is written here.

Backward functions are uniform: they take the gradient, the forward inputs they
read and the tensors the forward saved (``return_stats=True`` returns those), and
return the gradients of the forward inputs.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import _arrays, _spec
from ._native import InvalidArgumentError, InvalidArgumentTypeError, core
from ._policy import requested_policy


def _call(op: str, direction: str, inputs: Sequence[Any], attrs: dict[str, Any],
          policy: str | None, stream: Any, want_saved: bool = False) -> list[Any]:
    """Runs one op and direction: allocates its outputs (saved ones only with
    ``want_saved``) and workspace from the spec in the framework of the first ``rows``
    input, and returns every output (``None``: absent) in that framework."""
    spec = _spec.get(op, direction)
    # The core's one attribute rule, the policy's included (its errors name the op).
    attrs = _spec.normalize_attrs(spec, {**attrs, "policy": requested_policy() if policy is None
                                         else policy})
    policy = attrs.pop("policy")
    infos = [_arrays.array_info(a, op, s.name, optional=s.optional)
             for a, s in zip(inputs, spec.inputs)]
    like_index = next((i for i, s in enumerate(spec.inputs)
                       if s.role == "rows" and inputs[i] is not None), None)
    if like_index is None:
        raise InvalidArgumentError(f"{op}: argument '{spec.inputs[0].name}' is required")
    like, info = inputs[like_index], infos[like_index]
    shapes = [None if i is None else i.shape for i in infos]
    s = _arrays.stream_handle(stream, like, info)
    out_shapes = _spec.output_shapes(spec, shapes, attrs)
    out_dtypes = _spec.output_dtypes(spec, [None if i is None else i.dtype for i in infos])
    outputs = [None if shape is None or (o.use == "saved" and not want_saved)
               else _arrays.empty_like_framework(like, shape, dtype, info, s)
               for o, shape, dtype in zip(spec.outputs, out_shapes, out_dtypes)]
    ws_bytes = _spec.workspace_bytes(spec, shapes, attrs)
    ws = _arrays.empty_like_framework(like, (ws_bytes,), "uint8", info, s) if ws_bytes else None
    core.call_op(op, direction, list(inputs), outputs, ws, attrs, policy, s)
    return [None if o is None else _arrays.as_framework(o, like) for o in outputs]


def _forward(op: str, inputs: Sequence[Any], attrs: dict[str, Any], policy: str | None,
             stream: Any, return_stats: bool) -> Any:
    """The present results (and with ``return_stats`` the saved outputs), one array
    alone or a tuple in the spec's output order."""
    outs = [o for o in _call(op, "forward", inputs, attrs, policy, stream, return_stats)
            if o is not None]
    return outs[0] if len(outs) == 1 else tuple(outs)


def _backward(op: str, inputs: Sequence[Any], attrs: dict[str, Any], policy: str | None,
              stream: Any) -> Any:
    outs = _call(op, "backward", inputs, attrs, policy, stream)
    return outs[0] if len(outs) == 1 else tuple(outs)


_POLICY_STREAM = """policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: the current
        policy, see ``xpuruntime.policy``).
      stream: CUDA stream (int handle, ``xpuruntime.Stream`` or ``__cuda_stream__`` object);
        default: torch's current stream for torch tensors, else the default stream."""


def rms_norm(x: Any, weight: Any, eps: float = 1e-6, *, residual: Any = None,
             policy: str | None = None, stream: Any = None) -> Any:
    """RMS normalization over the last axis: ``y = x * rsqrt(mean(x^2, -1) + eps) * weight``.

    With ``residual``: ``h = x + residual`` (rounded to x's dtype) and ``y = rms_norm(h)``.
    f32 arithmetic.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight: ``[N]``, x's dtype.
      eps: added to the mean square, ``>= 0``.
      residual: optional, x's shape and dtype.
      {policy_stream}

    Returns:
      ``y`` (x's shape and dtype), or ``(y, h)`` with ``residual``. No statistics are
      saved: ``rms_norm_backward`` recomputes ``rstd`` from x.
    """
    return _forward("rms_norm", (x, weight, residual), {"eps": eps}, policy, stream, False)


def rms_norm_backward(dy: Any, x: Any, weight: Any, *, dh: Any = None, eps: float = 1e-6,
                      policy: str | None = None, stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``rms_norm``, recomputing ``rstd = rsqrt(mean(x^2, -1) + eps)`` from x.

    Args:
      dy: ``[..., N]``, the gradient of y; x's dtype.
      x: ``[..., N]`` float32, float16 or bfloat16, the normalized input (``h`` when a
        residual was added).
      weight: ``[N]``, x's dtype.
      dh: optional ``[..., N]`` gradient flowing into the ``h`` output; x's dtype.
      eps: the forward's ``eps``, ``>= 0``.
      {policy_stream}

    Returns:
      ``(dx, dweight)``: dx x's shape and dtype (also the residual's gradient when a
      residual was used); dweight ``[N]`` in weight's dtype, accumulated in f32 in a
      fixed order (deterministic).
    """
    return _backward("rms_norm", (dy, x, weight, dh), {"eps": eps}, policy, stream)


def layer_norm(x: Any, weight: Any, bias: Any, eps: float = 1e-5, *, return_stats: bool = False,
               policy: str | None = None, stream: Any = None) -> Any:
    """Layer normalization over the last axis.

    ``y = (x - mean) * rsqrt(var + eps) * weight + bias`` with ``mean`` and the
    population variance ``var`` taken over the last axis, in f32 arithmetic.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight: ``[N]``, x's dtype.
      bias: ``[N]``, x's dtype.
      eps: added to the variance, ``>= 0``.
      return_stats: also return the per-row ``mean`` and ``rstd = rsqrt(var + eps)``
        (float32, ``x.shape[:-1]``), as ``layer_norm_backward`` takes them.
      {policy_stream}

    Returns:
      ``y`` (x's shape and dtype), or ``(y, mean, rstd)`` with ``return_stats``.
    """
    return _forward("layer_norm", (x, weight, bias), {"eps": eps}, policy, stream, return_stats)


def layer_norm_backward(dy: Any, x: Any, weight: Any, mean: Any, rstd: Any, *,
                        policy: str | None = None, stream: Any = None) -> tuple[Any, Any, Any]:
    """Gradients of ``layer_norm``.

    Args:
      dy: ``[..., N]``, the gradient of y; x's dtype.
      x: ``[..., N]``, the forward input.
      weight: ``[N]``, x's dtype.
      mean, rstd: float32 ``x.shape[:-1]``, from ``layer_norm(..., return_stats=True)``.
      {policy_stream}

    Returns:
      ``(dx, dweight, dbias)``: dx x's shape and dtype; the parameter gradients ``[N]``
      in weight's dtype, accumulated in f32 in a fixed order (deterministic).
    """
    return _backward("layer_norm", (dy, x, weight, mean, rstd), {}, policy, stream)


def softmax(x: Any, *, scale: float = 1.0, policy: str | None = None, stream: Any = None) -> Any:
    """Softmax over the last axis: ``y = exp(s - max(s)) / sum(exp(s - max(s)))``, ``s = scale * x``.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      scale: multiplies ``x`` before the softmax (e.g. ``1 / sqrt(d)``); not NaN.
      {policy_stream}

    Returns:
      ``y``, x's shape and dtype.
    """
    return _forward("softmax", (x,), {"scale": scale}, policy, stream, False)


def softmax_backward(dy: Any, y: Any, *, scale: float = 1.0, policy: str | None = None,
                     stream: Any = None) -> Any:
    """Gradient of ``softmax``: ``dx = scale * y * (dy - sum(dy * y, -1))``.

    Args:
      dy: ``[..., N]``, the gradient of y; y's dtype.
      y: ``[..., N]``, the forward output (float32, float16 or bfloat16).
      scale: the forward's ``scale``.
      {policy_stream}

    Returns:
      ``dx``, y's shape and dtype.
    """
    return _backward("softmax", (dy, y), {"scale": scale}, policy, stream)


def swiglu(gate: Any, up: Any, *, policy: str | None = None, stream: Any = None) -> Any:
    """SwiGLU: ``y = silu(gate) * up``, ``silu(g) = g * sigmoid(g)``, elementwise.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      up: gate's shape and dtype.
      {policy_stream}

    Returns:
      ``y``, gate's shape and dtype.
    """
    return _forward("swiglu", (gate, up), {}, policy, stream, False)


def swiglu_backward(dy: Any, gate: Any, up: Any, *, policy: str | None = None,
                    stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``swiglu``: ``dgate = dy * up * silu'(gate)``, ``dup = dy * silu(gate)``.

    Args:
      dy: ``[..., N]``, the gradient of y; gate's shape and dtype.
      gate, up: the forward inputs, ``[..., N]``, one dtype.
      {policy_stream}

    Returns:
      ``(dgate, dup)``, gate's shape and dtype.
    """
    return _backward("swiglu", (dy, gate, up), {}, policy, stream)


def geglu(gate: Any, up: Any, *, policy: str | None = None, stream: Any = None) -> Any:
    """GeGLU: ``y = gelu_tanh(gate) * up``, elementwise, with
    ``gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))``.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (f32 arithmetic).
      up: gate's shape and dtype.
      {policy_stream}

    Returns:
      ``y``, gate's shape and dtype.
    """
    return _forward("geglu", (gate, up), {}, policy, stream, False)


def geglu_backward(dy: Any, gate: Any, up: Any, *, policy: str | None = None,
                   stream: Any = None) -> tuple[Any, Any]:
    """Gradients of ``geglu``: ``dgate = dy * up * gelu_tanh'(gate)``, ``dup = dy * gelu_tanh(gate)``.

    Args:
      dy: ``[..., N]``, the gradient of y; gate's shape and dtype.
      gate, up: the forward inputs, ``[..., N]``, one dtype.
      {policy_stream}

    Returns:
      ``(dgate, dup)``, gate's shape and dtype.
    """
    return _backward("geglu", (dy, gate, up), {}, policy, stream)


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
      {policy_stream}

    Returns:
      ``y``, x's shape and dtype.
    """
    return _forward("rope", (x, cos, sin), {"interleaved": interleaved}, policy, stream, False)


def rope_backward(dy: Any, cos: Any, sin: Any, *, interleaved: bool = False,
                  policy: str | None = None, stream: Any = None) -> Any:
    """Gradient of ``rope`` with respect to ``x``: ``dy`` rotated by the negative angle.

    Args:
      dy: ``[B, S, H, D]``, the gradient of y (float32, float16 or bfloat16).
      cos, sin: the forward's ``[S, D/2]`` tables (float32 or dy's dtype).
      interleaved: the forward's layout.
      {policy_stream}

    Returns:
      ``dx``, dy's shape and dtype. (cos and sin get no gradient.)
    """
    return _backward("rope", (dy, cos, sin), {"interleaved": interleaved}, policy, stream)


def cross_entropy(logits: Any, labels: Any, *, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean",
                  return_stats: bool = False, policy: str | None = None,
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
      return_stats: also return ``lse`` (float32, labels' shape; 0 for ignored rows), as
        ``cross_entropy_backward`` takes it.
      {policy_stream}

    Returns:
      ``loss``: float32, 0-d for ``"mean"`` / ``"sum"``, labels' shape for ``"none"``;
      or ``(loss, lse)`` with ``return_stats``.
    """
    attrs = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
             "reduction": reduction}
    return _forward("cross_entropy", (logits, labels), attrs, policy, stream, return_stats)


def _f32_scalar_like(value: float, like: Any) -> Any:
    """A 0-d float32 array holding ``value`` in ``like``'s framework and device."""
    info = _arrays.array_info(like, "cross_entropy", "logits")
    fw = _arrays._framework(like)
    if fw == "numpy":
        import numpy as np
        return np.full((), value, dtype=np.float32)
    if fw == "torch":
        import sys
        torch = sys.modules["torch"]
        device = "cpu" if info.device_kind == "cpu" else f"cuda:{info.device_index}"
        return torch.full((), float(value), dtype=torch.float32, device=device)
    raise InvalidArgumentTypeError("cross_entropy: pass 'dloss' as a float32 array for "
                                   f"{type(like).__name__} logits (a number needs numpy or torch)")


def cross_entropy_backward(dloss: Any, logits: Any, labels: Any, lse: Any, *,
                           ignore_index: int = -100, label_smoothing: float = 0.0,
                           reduction: str = "mean", policy: str | None = None,
                           stream: Any = None) -> Any:
    """Gradient of ``cross_entropy`` with respect to ``logits``.

    ``dlogits[t, v] = g_t * (softmax(t, v) - (1 - ls) * [v == label_t] - ls / V)`` with
    ``g_t = dloss`` (sum), ``dloss / count`` (mean) or ``dloss[t]`` (none), and 0 for
    ignored rows. The softmax is recomputed from ``logits`` and ``lse`` (no f32
    ``[T, V]`` buffer).

    Args:
      dloss: the gradient of the loss, float32: 0-d (or a Python number) for ``"mean"`` /
        ``"sum"``, labels' shape for ``"none"``.
      logits: ``[T, V]``, the forward input.
      labels: ``[T]``, the forward labels (int32 or int64).
      lse: float32, labels' shape, from ``cross_entropy(..., return_stats=True)``.
      ignore_index, label_smoothing, reduction: the forward's.
      {policy_stream}

    Returns:
      ``dlogits``, logits' shape and dtype.
    """
    if isinstance(dloss, (int, float)):
        dloss = _f32_scalar_like(float(dloss), logits)
    attrs = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
             "reduction": reduction}
    return _backward("cross_entropy", (dloss, logits, labels, lse), attrs, policy, stream)


def topk_softmax(logits: Any, k: int, *, renormalize: bool = True, policy: str | None = None,
                 stream: Any = None) -> tuple[Any, Any]:
    """Mixture-of-experts routing: the ``k`` largest of ``p = softmax(logits)`` over the last axis.

    ``indices`` are the ``k`` largest logits in descending order, ties to the lower index
    (NaN ranks above ``+inf``); ``weights = p[indices]`` in f32 arithmetic, divided by their
    sum when ``renormalize`` (a softmax over the chosen logits). A row holding NaN or
    ``+inf``, or only ``-inf``, gets NaN weights. Exact selection and fixed-order sums:
    every policy is deterministic.

    Args:
      logits: ``[..., E]`` float32, float16 or bfloat16, ``E <= 4096``.
      k: experts a row, ``1 <= k <= E``.
      renormalize: divide the chosen probabilities by their sum.
      {policy_stream}

    Returns:
      ``(weights, indices)``: float32 and int32, ``logits.shape[:-1] + (k,)``.
    """
    return _forward("topk_softmax", (logits,), {"k": k, "renormalize": renormalize}, policy,
                    stream, False)


def topk_softmax_backward(dweights: Any, logits: Any, weights: Any, indices: Any, *,
                          renormalize: bool = True, policy: str | None = None,
                          stream: Any = None) -> Any:
    """Gradient of ``topk_softmax`` with respect to ``logits`` (through the weights).

    With ``dot = sum_j dweights_j * weights_j``: ``dlogits[indices_j] = weights_j *
    (dweights_j - dot)``; every other entry is 0 with ``renormalize``, else ``-p_v * dot``
    (``p`` recomputed from ``logits`` and the forward's weights).

    Args:
      dweights: float32 ``[..., k]``, the gradient of weights.
      logits: ``[..., E]``, the forward input (read only without ``renormalize``).
      weights, indices: the forward's outputs. Indices outside ``[0, E)`` or repeated in a
        row raise on the CPU; on CUDA that row's gradient is NaN.
      renormalize: the forward's.
      {policy_stream}

    Returns:
      ``dlogits``, logits' shape and dtype.
    """
    # k is the forward's attribute; the backward reads it from the indices' last axis.
    shape = _arrays.array_info(indices, "topk_softmax", "indices").shape
    if not shape:
        raise InvalidArgumentError("topk_softmax: 'indices' must have at least 1 dimension (k), "
                                   "got a 0-d array")
    k = shape[-1]
    return _backward("topk_softmax", (dweights, logits, weights, indices),
                     {"k": k, "renormalize": renormalize}, policy, stream)


for _fn in (rms_norm, rms_norm_backward, layer_norm, layer_norm_backward, softmax,
            softmax_backward, swiglu, swiglu_backward, geglu, geglu_backward, rope, rope_backward,
            cross_entropy, cross_entropy_backward, topk_softmax, topk_softmax_backward):
    if _fn.__doc__:  # None under python -OO
        _fn.__doc__ = _fn.__doc__.replace("{policy_stream}", _POLICY_STREAM)
del _fn
