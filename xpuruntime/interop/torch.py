"""PyTorch frontend: xpuruntime ops registered with ``torch.library`` as
``torch.ops.xpuruntime.*``, with fake kernels (torch.compile, meta tensors) and
autograd. Tensors reach the C++ core through DLPack, zero-copy, and kernels run
on torch's current CUDA stream. Nothing here builds against torch's C++ ABI.
"""

from __future__ import annotations

from typing import Optional

from .._extras import require

torch = require("torch", "torch")

from .._native import core  # noqa: E402
from .._policy import get_policy, resolve_policy  # noqa: E402

Tensor = torch.Tensor

# torch.compile reads the policy once, when it traces (like JAX at trace time).
_traced_policy = torch.compiler.assume_constant_result(get_policy)


def _policy(policy: Optional[str]) -> str:
    return resolve_policy(policy) if policy is not None else _traced_policy()


def _stream(t: Tensor) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


def _arg(t: Optional[Tensor]):
    """A DLPack capsule of ``t`` (zero-copy). ``to_dlpack`` rather than
    ``__dlpack__``: the kernel runs on torch's current stream, so the stream
    handshake of ``__dlpack__`` (an event per tensor) is not needed. The
    autograd graph is handled by torch.library, so the detached view is safe."""
    return None if t is None else torch.utils.dlpack.to_dlpack(t.detach())


def _rows_layout(t: Tensor) -> Tensor:
    return t if t.dim() == 0 or t.stride(-1) == 1 else t.contiguous()


# ---- rms_norm -------------------------------------------------------------------------------

@torch.library.custom_op("xpuruntime::rms_norm", mutates_args=())
def _rms_norm_op(x: Tensor, weight: Tensor, residual: Optional[Tensor], eps: float,
                 policy: str) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (y, h, rstd); h is empty without a residual, rstd is f32 x.shape[:-1]."""
    x = _rows_layout(x)
    residual = None if residual is None else _rows_layout(residual)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    h = torch.empty(x.shape if residual is not None else (0,), dtype=x.dtype, device=x.device)
    rstd = torch.empty(x.shape[:-1], dtype=torch.float32, device=x.device)
    core.call_op("rms_norm", "forward", [_arg(x), _arg(weight), _arg(residual)],
                 [_arg(y), _arg(h) if residual is not None else None, _arg(rstd)], None,
                 {"eps": eps}, policy, _stream(x))
    return y, h, rstd


@_rms_norm_op.register_fake
def _(x, weight, residual, eps, policy):
    h_shape = x.shape if residual is not None else (0,)
    return (x.new_empty(x.shape), x.new_empty(h_shape),
            x.new_empty(x.shape[:-1], dtype=torch.float32))


@torch.library.custom_op("xpuruntime::rms_norm_backward", mutates_args=())
def _rms_norm_backward_op(dy: Tensor, x: Tensor, weight: Tensor, rstd: Tensor,
                          dh: Optional[Tensor], policy: str) -> tuple[Tensor, Tensor]:
    """Returns (dx, dweight) for the rms_norm of x (h when a residual was added)."""
    dy, x = _rows_layout(dy), _rows_layout(x)
    dh = None if dh is None else _rows_layout(dh)
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    dw = torch.empty(weight.shape, dtype=weight.dtype, device=x.device)
    shapes = [list(dy.shape), list(x.shape), list(weight.shape), list(rstd.shape),
              None if dh is None else list(dh.shape)]
    ws = torch.empty(core.workspace_bytes("rms_norm", "backward", shapes, {}), dtype=torch.uint8,
                     device=x.device)
    core.call_op("rms_norm", "backward",
                 [_arg(dy), _arg(x), _arg(weight), _arg(rstd.contiguous()), _arg(dh)],
                 [_arg(dx), _arg(dw)], _arg(ws), {}, policy, _stream(x))
    return dx, dw


@_rms_norm_backward_op.register_fake
def _(dy, x, weight, rstd, dh, policy):
    return x.new_empty(x.shape), weight.new_empty(weight.shape)


def _rms_norm_setup(ctx, inputs, output):
    x, weight, residual, eps, policy = inputs
    y, h, rstd = output
    ctx.has_residual = residual is not None
    ctx.policy = policy
    ctx.save_for_backward(h if ctx.has_residual else x, weight, rstd)


def _rms_norm_backward(ctx, dy, dh, drstd):
    saved_x, weight, rstd = ctx.saved_tensors
    dh = dh if ctx.has_residual else None
    dx, dw = torch.ops.xpuruntime.rms_norm_backward(dy, saved_x, weight, rstd, dh, ctx.policy)
    return dx, dw, (dx if ctx.has_residual else None), None, None


_rms_norm_op.register_autograd(_rms_norm_backward, setup_context=_rms_norm_setup)


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6, *, residual: Optional[Tensor] = None,
             policy: Optional[str] = None):
    """RMS normalization over the last axis (``torch.ops.xpuruntime.rms_norm``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16, on the CPU or a CUDA device.
      weight: ``[N]``, x's dtype and device.
      eps: added to the mean square.
      residual: optional, x's shape: normalizes ``h = x + residual``.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).

    Returns:
      ``y``, or ``(y, h)`` with ``residual``. Differentiable in x, weight and residual.
    """
    y, h, _ = torch.ops.xpuruntime.rms_norm(x, weight, residual, float(eps), _policy(policy))
    return y if residual is None else (y, h)


# ---- layer_norm -----------------------------------------------------------------------------

@torch.library.custom_op("xpuruntime::layer_norm", mutates_args=())
def _layer_norm_op(x: Tensor, weight: Tensor, bias: Tensor, eps: float,
                   policy: str) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (y, mean, rstd); mean and rstd are f32 x.shape[:-1]."""
    x = _rows_layout(x)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    mean = torch.empty(x.shape[:-1], dtype=torch.float32, device=x.device)
    rstd = torch.empty(x.shape[:-1], dtype=torch.float32, device=x.device)
    core.call_op("layer_norm", "forward", [_arg(x), _arg(weight), _arg(bias)],
                 [_arg(y), _arg(mean), _arg(rstd)], None, {"eps": eps}, policy, _stream(x))
    return y, mean, rstd


@_layer_norm_op.register_fake
def _(x, weight, bias, eps, policy):
    stat = x.new_empty(x.shape[:-1], dtype=torch.float32)
    return x.new_empty(x.shape), stat, stat.new_empty(stat.shape)


@torch.library.custom_op("xpuruntime::layer_norm_backward", mutates_args=())
def _layer_norm_backward_op(dy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor,
                            policy: str) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (dx, dweight, dbias)."""
    dy, x = _rows_layout(dy), _rows_layout(x)
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    dw = torch.empty(weight.shape, dtype=weight.dtype, device=x.device)
    db = torch.empty(weight.shape, dtype=weight.dtype, device=x.device)
    shapes = [list(t.shape) for t in (dy, x, weight, mean, rstd)]
    ws = torch.empty(core.workspace_bytes("layer_norm", "backward", shapes, {}),
                     dtype=torch.uint8, device=x.device)
    core.call_op("layer_norm", "backward",
                 [_arg(dy), _arg(x), _arg(weight), _arg(mean.contiguous()), _arg(rstd.contiguous())],
                 [_arg(dx), _arg(dw), _arg(db)], _arg(ws), {}, policy, _stream(x))
    return dx, dw, db


@_layer_norm_backward_op.register_fake
def _(dy, x, weight, mean, rstd, policy):
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty(weight.shape)


def _layer_norm_setup(ctx, inputs, output):
    x, weight, bias, eps, policy = inputs
    _, mean, rstd = output
    ctx.policy = policy
    ctx.save_for_backward(x, weight, mean, rstd)


def _layer_norm_backward(ctx, dy, dmean, drstd):
    x, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = torch.ops.xpuruntime.layer_norm_backward(dy, x, weight, mean, rstd, ctx.policy)
    return dx, dw, db, None, None


_layer_norm_op.register_autograd(_layer_norm_backward, setup_context=_layer_norm_setup)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5, *,
               policy: Optional[str] = None) -> Tensor:
    """Layer normalization over the last axis (``torch.ops.xpuruntime.layer_norm``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight, bias: ``[N]``, x's dtype and device.
      eps: added to the (population) variance.
      policy: kernel policy (default: current policy).

    Returns:
      ``y``, x's shape and dtype. Differentiable in x, weight and bias.
    """
    return torch.ops.xpuruntime.layer_norm(x, weight, bias, float(eps), _policy(policy))[0]


# ---- softmax --------------------------------------------------------------------------------

@torch.library.custom_op("xpuruntime::softmax", mutates_args=())
def _softmax_op(x: Tensor, scale: float, policy: str) -> Tensor:
    x = _rows_layout(x)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    core.call_op("softmax", "forward", [_arg(x)], [_arg(y)], None, {"scale": scale}, policy,
                 _stream(x))
    return y


@_softmax_op.register_fake
def _(x, scale, policy):
    return x.new_empty(x.shape)


@torch.library.custom_op("xpuruntime::softmax_backward", mutates_args=())
def _softmax_backward_op(dy: Tensor, y: Tensor, scale: float, policy: str) -> Tensor:
    dy, y = _rows_layout(dy), _rows_layout(y)
    dx = torch.empty(y.shape, dtype=y.dtype, device=y.device)
    core.call_op("softmax", "backward", [_arg(dy), _arg(y)], [_arg(dx)], None, {"scale": scale},
                 policy, _stream(y))
    return dx


@_softmax_backward_op.register_fake
def _(dy, y, scale, policy):
    return y.new_empty(y.shape)


def _softmax_setup(ctx, inputs, output):
    ctx.scale, ctx.policy = inputs[1], inputs[2]
    ctx.save_for_backward(output)


def _softmax_backward(ctx, dy):
    (y,) = ctx.saved_tensors
    return torch.ops.xpuruntime.softmax_backward(dy, y, ctx.scale, ctx.policy), None, None


_softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)


def softmax(x: Tensor, *, scale: float = 1.0, policy: Optional[str] = None) -> Tensor:
    """Softmax over the last axis of ``scale * x`` (``torch.ops.xpuruntime.softmax``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      scale: multiplies x first.

    Returns:
      ``y``, x's shape and dtype. Differentiable in x.
    """
    return torch.ops.xpuruntime.softmax(x, float(scale), _policy(policy))


# ---- swiglu, geglu (one definition, two activations) -----------------------------------------

def _register_glu(name: str):
    @torch.library.custom_op(f"xpuruntime::{name}", mutates_args=())
    def op(gate: Tensor, up: Tensor, policy: str) -> Tensor:
        gate, up = _rows_layout(gate), _rows_layout(up)
        y = torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)
        core.call_op(name, "forward", [_arg(gate), _arg(up)], [_arg(y)], None, {}, policy,
                     _stream(gate))
        return y

    @op.register_fake
    def _(gate, up, policy):
        return gate.new_empty(gate.shape)

    @torch.library.custom_op(f"xpuruntime::{name}_backward", mutates_args=())
    def op_backward(dy: Tensor, gate: Tensor, up: Tensor, policy: str) -> tuple[Tensor, Tensor]:
        dy, gate, up = _rows_layout(dy), _rows_layout(gate), _rows_layout(up)
        dgate = torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)
        dup = torch.empty(up.shape, dtype=up.dtype, device=up.device)
        core.call_op(name, "backward", [_arg(dy), _arg(gate), _arg(up)], [_arg(dgate), _arg(dup)],
                     None, {}, policy, _stream(gate))
        return dgate, dup

    @op_backward.register_fake
    def _(dy, gate, up, policy):
        return gate.new_empty(gate.shape), up.new_empty(up.shape)

    def setup(ctx, inputs, output):
        ctx.policy = inputs[2]
        ctx.save_for_backward(inputs[0], inputs[1])

    def grad(ctx, dy):
        gate, up = ctx.saved_tensors
        dgate, dup = getattr(torch.ops.xpuruntime, f"{name}_backward")(dy, gate, up, ctx.policy)
        return dgate, dup, None

    op.register_autograd(grad, setup_context=setup)
    return getattr(torch.ops.xpuruntime, name)


_swiglu_op = _register_glu("swiglu")
_geglu_op = _register_glu("geglu")


def swiglu(gate: Tensor, up: Tensor, *, policy: Optional[str] = None) -> Tensor:
    """``silu(gate) * up`` (``torch.ops.xpuruntime.swiglu``).

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16.
      up: gate's shape, dtype and device.

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _swiglu_op(gate, up, _policy(policy))


def geglu(gate: Tensor, up: Tensor, *, policy: Optional[str] = None) -> Tensor:
    """``gelu_tanh(gate) * up`` (``torch.ops.xpuruntime.geglu``).

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16.
      up: gate's shape, dtype and device.

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _geglu_op(gate, up, _policy(policy))


# ---- rope -----------------------------------------------------------------------------------

def _rope_apply(direction: str, x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool,
                policy: str) -> Tensor:
    x = _rows_layout(x)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    core.call_op("rope", direction, [_arg(x), _arg(_rows_layout(cos)), _arg(_rows_layout(sin))],
                 [_arg(y)], None, {"interleaved": interleaved}, policy, _stream(x))
    return y


@torch.library.custom_op("xpuruntime::rope", mutates_args=())
def _rope_op(x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool, policy: str) -> Tensor:
    return _rope_apply("forward", x, cos, sin, interleaved, policy)


@torch.library.custom_op("xpuruntime::rope_backward", mutates_args=())
def _rope_backward_op(dy: Tensor, cos: Tensor, sin: Tensor, interleaved: bool, policy: str) -> Tensor:
    return _rope_apply("backward", dy, cos, sin, interleaved, policy)


@_rope_op.register_fake
def _(x, cos, sin, interleaved, policy):
    return x.new_empty(x.shape)


@_rope_backward_op.register_fake
def _(dy, cos, sin, interleaved, policy):
    return dy.new_empty(dy.shape)


def _rope_setup(ctx, inputs, output):
    _, cos, sin, ctx.interleaved, ctx.policy = inputs
    ctx.save_for_backward(cos, sin)


def _rope_grad(ctx, dy):
    cos, sin = ctx.saved_tensors
    dx = torch.ops.xpuruntime.rope_backward(dy, cos, sin, ctx.interleaved, ctx.policy)
    return dx, None, None, None, None  # OPS.md: gradient for x only


_rope_op.register_autograd(_rope_grad, setup_context=_rope_setup)


def rope(x: Tensor, cos: Tensor, sin: Tensor, *, interleaved: bool = False,
         policy: Optional[str] = None) -> Tensor:
    """Rotary position embedding (``torch.ops.xpuruntime.rope``).

    Args:
      x: ``[B, S, H, D]`` float32, float16 or bfloat16; D even.
      cos, sin: ``[S, D/2]``, float32 or x's dtype.
      interleaved: False rotates halves (NeoX/Llama); True rotates pairs (GPT-J).

    Returns:
      ``y``, x's shape and dtype. Differentiable in x only.
    """
    return torch.ops.xpuruntime.rope(x, cos, sin, bool(interleaved), _policy(policy))


# ---- cross_entropy ----------------------------------------------------------------------------

@torch.library.custom_op("xpuruntime::cross_entropy", mutates_args=())
def _cross_entropy_op(logits: Tensor, labels: Tensor, ignore_index: int, label_smoothing: float,
                      reduction: str, policy: str) -> tuple[Tensor, Tensor]:
    """Returns (loss, lse): loss f32 () or labels' shape, lse f32 labels' shape."""
    logits, labels = _rows_layout(logits), labels.contiguous()
    dev = logits.device
    loss = torch.empty(labels.shape if reduction == "none" else (), dtype=torch.float32, device=dev)
    lse = torch.empty(labels.shape, dtype=torch.float32, device=dev)
    attrs = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
             "reduction": reduction}
    ws = torch.empty(core.workspace_bytes("cross_entropy", "forward",
                                          [list(logits.shape), list(labels.shape)], attrs),
                     dtype=torch.uint8, device=dev)
    core.call_op("cross_entropy", "forward", [_arg(logits), _arg(labels)], [_arg(loss), _arg(lse)],
                 _arg(ws), attrs, policy, _stream(logits))
    return loss, lse


@_cross_entropy_op.register_fake
def _(logits, labels, ignore_index, label_smoothing, reduction, policy):
    loss = logits.new_empty(labels.shape if reduction == "none" else (), dtype=torch.float32)
    return loss, logits.new_empty(labels.shape, dtype=torch.float32)


@torch.library.custom_op("xpuruntime::cross_entropy_backward", mutates_args=())
def _cross_entropy_backward_op(dloss: Tensor, logits: Tensor, labels: Tensor, lse: Tensor,
                               ignore_index: int, label_smoothing: float, reduction: str,
                               policy: str) -> Tensor:
    logits = _rows_layout(logits)
    dlogits = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
    attrs = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
             "reduction": reduction}
    shapes = [list(t.shape) for t in (dloss, logits, labels, lse)]
    ws = torch.empty(core.workspace_bytes("cross_entropy", "backward", shapes, attrs),
                     dtype=torch.uint8, device=logits.device)
    core.call_op("cross_entropy", "backward",
                 [_arg(dloss.float().contiguous()), _arg(logits), _arg(labels.contiguous()),
                  _arg(lse.contiguous())], [_arg(dlogits)], _arg(ws), attrs, policy,
                 _stream(logits))
    return dlogits


@_cross_entropy_backward_op.register_fake
def _(dloss, logits, labels, lse, ignore_index, label_smoothing, reduction, policy):
    return logits.new_empty(logits.shape)


def _cross_entropy_setup(ctx, inputs, output):
    logits, labels, ctx.ignore_index, ctx.label_smoothing, ctx.reduction, ctx.policy = inputs
    ctx.save_for_backward(logits, labels, output[1])


def _cross_entropy_grad(ctx, dloss, dlse):
    logits, labels, lse = ctx.saved_tensors
    dlogits = torch.ops.xpuruntime.cross_entropy_backward(
        dloss, logits, labels, lse, ctx.ignore_index, ctx.label_smoothing, ctx.reduction, ctx.policy)
    return dlogits, None, None, None, None, None


_cross_entropy_op.register_autograd(_cross_entropy_grad, setup_context=_cross_entropy_setup)


def cross_entropy(logits: Tensor, labels: Tensor, *, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean",
                  policy: Optional[str] = None) -> Tensor:
    """Cross entropy (``torch.ops.xpuruntime.cross_entropy``), never materializing an f32 softmax.

    Args:
      logits: ``[T, V]`` float32, float16 or bfloat16.
      labels: ``[T]`` int32 or int64; ``ignore_index`` rows count for nothing.
      label_smoothing: in [0, 1].
      reduction: ``"mean"`` over counted rows, ``"sum"`` or ``"none"``.

    Returns:
      f32 scalar (mean, sum) or f32 ``[T]`` (none). Differentiable in logits.
    """
    return torch.ops.xpuruntime.cross_entropy(logits, labels, int(ignore_index),
                                              float(label_smoothing), reduction, _policy(policy))[0]
