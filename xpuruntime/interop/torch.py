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
    core.rms_norm_forward(_arg(x), _arg(weight), _arg(residual), _arg(y),
                          _arg(h) if residual is not None else None, _arg(rstd), eps, policy,
                          _stream(x))
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
    n = x.shape[-1]
    rows = x.numel() // n if n else 0
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    dw = torch.empty(weight.shape, dtype=weight.dtype, device=x.device)
    ws = torch.empty(core.rms_norm_backward_workspace_bytes(rows, n), dtype=torch.uint8,
                     device=x.device)
    core.rms_norm_backward(_arg(dy), _arg(x), _arg(weight), _arg(rstd.contiguous()), _arg(dh),
                           _arg(dx), _arg(dw), _arg(ws), policy, _stream(x))
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
