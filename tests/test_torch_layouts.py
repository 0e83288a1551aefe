"""Every torch op, forward and backward, on the layouts real models hand over:
transposed, permuted, sliced and expanded (stride-0) inputs and parameters, and
incoming gradients that are not contiguous; against float64 autodiff of the same
views. rope reads Hugging Face's head-major q (``q.transpose(1, 2)``) and its
gradient through their strides: asserted on what reaches the core (no copy)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime.interop.torch import _registration  # noqa: E402
from conftest import TORCH_DEVICES, assert_close, to_numpy  # noqa: E402

TDT = {"float32": torch.float32, "bfloat16": torch.bfloat16}


# ---- views: (shape of the base to allocate, base -> the op's logical input) ----------------------

def rows_view(kind: str, shape: tuple):
    """A [..., N] input of logical ``shape`` laid out as ``kind``."""
    *lead, n = shape
    if kind == "contiguous":
        return shape, lambda b: b
    if kind == "transposed":  # last axis strided: copied
        return (*lead[:-1], n, lead[-1]), lambda b: b.transpose(-1, -2)
    if kind == "permuted":  # leading axes do not collapse: copied
        return (lead[1], lead[0], *lead[2:], n), lambda b: b.transpose(0, 1)
    if kind == "sliced":  # every other row, a misaligned column window: read as rows
        return (2 * lead[0], *lead[1:], n + 3), lambda b: b[::2, ..., 1:1 + n]
    if kind == "expanded":  # stride 0 over the first axis: copied
        return (1, *lead[1:], n), lambda b: b.expand(shape)
    raise AssertionError(kind)


def param_view(kind: str, n: int):
    """A [N] parameter laid out as ``kind`` (permuted and transposed mean strided here)."""
    if kind == "expanded":
        return (1,), lambda b: b.expand(n)
    if kind in ("sliced", "transposed", "permuted"):
        return (2 * n,), lambda b: b[::2]
    return (n,), lambda b: b


def grad_view(kind: str, shape: tuple):
    """An incoming gradient of ``shape``, not contiguous unless ``kind`` says so."""
    if kind == "expanded":  # what the gradient of .sum() looks like
        return (1,) * (len(shape) - 1) + shape[-1:], lambda b: b.expand(shape)
    if kind == "transposed" and len(shape) >= 2:
        return rows_view("transposed", shape)
    return shape, lambda b: b


# ---- ops: inputs (kind -> (base shape, view)) and the float64 reference ----------------------

def rope_ref(x, cos, sin):
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    x1, x2 = x.chunk(2, -1)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def rounded(h, dtype):
    """h rounded to the op's dtype (OPS.md: rms_norm's h = x + residual is), straight through."""
    return h + (h.detach().to(TDT[dtype]).double() - h.detach())


SHAPE = (6, 4, 40)  # [..., N] ops
OPS = {
    # op: (inputs, "rows" or "param"; call; float64 reference(*inputs, dtype))
    "rms_norm": (["rows", "param"],
                 lambda x, w: xt.rms_norm(x, w), lambda x, w, dtype: F.rms_norm(x, x.shape[-1:], w, 1e-6)),
    "rms_norm_residual": (["rows", "param", "rows"],
                          lambda x, w, r: xt.rms_norm(x, w, residual=r)[0],
                          lambda x, w, r, dtype: F.rms_norm(rounded(x + r, dtype), x.shape[-1:],
                                                            w, 1e-6)),
    "layer_norm": (["rows", "param", "param"],
                   lambda x, w, b: xt.layer_norm(x, w, b),
                   lambda x, w, b, dtype: F.layer_norm(x, x.shape[-1:], w, b, 1e-5)),
    "softmax": (["rows"], lambda x: xt.softmax(x, scale=0.7),
                lambda x, dtype: torch.softmax(0.7 * x, -1)),
    "swiglu": (["rows", "rows"], xt.swiglu, lambda g, u, dtype: F.silu(g) * u),
    "geglu": (["rows", "rows"], xt.geglu,
              lambda g, u, dtype: F.gelu(g, approximate="tanh") * u),
}
LAYOUTS = ["contiguous", "transposed", "permuted", "sliced", "expanded"]


def leaves_and_views(kinds, layout, device, dtype, gen):
    leaves, views = [], []
    for role in kinds:
        base_shape, view = (rows_view(layout, SHAPE) if role == "rows"
                            else param_view(layout, SHAPE[-1]))
        base = torch.randn(base_shape, generator=gen).to(device, TDT[dtype])
        leaves.append(base.requires_grad_())
        views.append(view)
    return leaves, views


def check_against_reference(fn, ref, leaves, views, dy, dtype, factor=1.0):
    y = fn(*[v(t) for t, v in zip(leaves, views)])
    y.backward(dy)
    leaves64 = [t.detach().double().cpu().requires_grad_() for t in leaves]
    args64 = [v(t) for t, v in zip(leaves64, views)]
    y64 = ref(*args64, dtype=dtype)
    y64.backward(dy.double().cpu())
    assert_close(to_numpy(y), to_numpy(y64), dtype, "y", factor)
    for i, (t, t64) in enumerate(zip(leaves, leaves64)):
        assert_close(to_numpy(t.grad), to_numpy(t64.grad), dtype, f"grad of input {i}", factor)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", list(TDT))
@pytest.mark.parametrize("grad", ["contiguous", "transposed", "expanded"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", list(OPS))
def test_row_ops_every_layout(device, dtype, grad, layout, op):
    kinds, fn, ref = OPS[op]
    gen = torch.Generator().manual_seed(7)
    leaves, views = leaves_and_views(kinds, layout, device, dtype, gen)
    gshape, gview = grad_view(grad, SHAPE)
    dy = gview(torch.randn(gshape, generator=gen).to(device, TDT[dtype]))
    # softmax's dx is a difference of nearly equal terms where dy is constant over a row.
    factor = 3.0 if op == "softmax" and grad == "expanded" else 1.0
    check_against_reference(fn, ref, leaves, views, dy, dtype, factor)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", list(TDT))
@pytest.mark.parametrize("labels_layout", ["contiguous", "sliced"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_every_layout(device, dtype, labels_layout, layout, reduction):
    gen = torch.Generator().manual_seed(3)
    t, v = 12, 37
    base_shape, view = rows_view(layout, (t, 2, v))
    base = torch.randn(base_shape, generator=gen).to(device, TDT[dtype]).requires_grad_()
    labels = torch.randint(0, v, (2 * t * 2,), generator=gen).to(device)
    labels[::5] = -100
    labels = (labels[: t * 2] if labels_layout == "contiguous" else labels[::2]).view(t, 2)
    fn = lambda lg: xt.cross_entropy(lg.flatten(0, 1), labels.flatten(), reduction=reduction)  # noqa: E731
    ref = lambda lg, dtype: F.cross_entropy(lg.flatten(0, 1), labels.flatten().cpu(), reduction=reduction)  # noqa: E731
    # reduction="none": a strided incoming gradient of [T]; mean: a scalar.
    dy = (torch.randn(2 * t * 2, generator=gen)[::2].to(device) if reduction == "none"
          else torch.tensor(1.5, device=device))
    check_against_reference(fn, ref, [base], [view], dy, dtype)


# ---- rope: Hugging Face's layout, read through its strides -------------------------------------

B, S, H, D = 2, 6, 4, 16
ROPE_LAYOUTS = {  # kind -> (base shape, base -> [B, S, H, D] view)
    "contiguous": ((B, S, H, D), lambda b: b),
    "hf_head_major": ((B, H, S, D), lambda b: b.transpose(1, 2)),
    "seq_major": ((S, B, H, D), lambda b: b.transpose(0, 1)),
    "sliced": ((B, S, 2 * H, D + 2), lambda b: b[:, :, ::2, 2:]),
    "expanded_batch": ((1, S, H, D), lambda b: b.expand(B, S, H, D)),
    "d_strided": ((B, S, D, H), lambda b: b.transpose(2, 3)),  # D not contiguous: copied
}
TABLES = {
    "contiguous": ((S, D // 2), lambda t: t),
    "hf_full_width": ((S, D), lambda t: t[:, : D // 2]),
    "expanded": ((1, D // 2), lambda t: t.expand(S, D // 2)),
}


class Seen:
    """Records the (data_ptr, strides) of every tensor the registered ops hand to the core."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = _registration.dlpack

        def record(t):
            if t is not None:
                self.calls.append((t.data_ptr(), tuple(t.stride())))
            return real(t)
        monkeypatch.setattr(_registration, "dlpack", record)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", list(TDT))
@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize("grad", ["contiguous", "hf_head_major", "expanded_batch"])
@pytest.mark.parametrize("layout", list(ROPE_LAYOUTS))
def test_rope_every_layout(monkeypatch, device, dtype, table, grad, layout):
    gen = torch.Generator().manual_seed(11)
    base_shape, view = ROPE_LAYOUTS[layout]
    base = torch.randn(base_shape, generator=gen).to(device, TDT[dtype]).requires_grad_()
    tshape, tview = TABLES[table]
    cos, sin = (tview(torch.randn(tshape, generator=gen).to(device)) for _ in range(2))
    gshape, gview = ROPE_LAYOUTS[grad]
    dy = gview(torch.randn(gshape, generator=gen).to(device, TDT[dtype]))
    seen = Seen(monkeypatch)
    x = view(base)
    y = xt.rope(x, cos, sin)
    y.backward(dy)
    if layout != "d_strided":  # x reached the kernel as it is: its pointer and strides
        assert seen.calls[0] == (x.data_ptr(), x.stride())
    assert seen.calls[1] == (cos.data_ptr(), cos.stride())  # tables: any S stride, no copy
    # The backward's first tensor is dy, read through its strides (no copy).
    bwd = seen.calls[4]
    assert bwd == (dy.data_ptr(), dy.stride())
    assert y.is_contiguous()
    b64 = base.detach().double().cpu().requires_grad_()
    y64 = rope_ref(view(b64), cos.double().cpu(), sin.double().cpu())
    y64.backward(dy.double().cpu())
    assert_close(to_numpy(y), to_numpy(y64), dtype)
    assert_close(to_numpy(base.grad), to_numpy(b64.grad), dtype, "dx")


class HFStyleAttention(torch.nn.Module):
    """Hugging Face Llama's attention data flow with rope replaced as users patch it:
    q and k are [B, H, S, D] views of the projections, rope gets ``q.transpose(1, 2)``."""

    def __init__(self, hidden, heads, use_xpu):
        super().__init__()
        self.heads, self.head_dim, self.use_xpu = heads, hidden // heads, use_xpu
        self.q_proj = torch.nn.Linear(hidden, hidden, bias=False)
        self.k_proj = torch.nn.Linear(hidden, hidden, bias=False)
        self.v_proj = torch.nn.Linear(hidden, hidden, bias=False)
        self.o_proj = torch.nn.Linear(hidden, hidden, bias=False)

    def rotate(self, t, cos, sin):  # t [B, H, S, D]
        if self.use_xpu:
            return xt.rope(t.transpose(1, 2), cos, sin).transpose(1, 2)
        return rope_ref(t.transpose(1, 2), cos, sin).transpose(1, 2)

    def forward(self, x, cos, sin):
        b, s, _ = x.shape
        shape = (b, s, self.heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_rope_in_hf_attention_backward(device):
    # The failure of issue 14: the gradient reaching rope is [B, S, H, D] with head-major
    # strides ("'dy' ... must be contiguous in its last dimension with leading dimensions
    # that collapse to one row stride"); it must train, matching the unpatched block.
    torch.manual_seed(0)
    hidden, heads, b, s = 64, 4, 2, 10
    ref = HFStyleAttention(hidden, heads, use_xpu=False).to(device)
    xpu = HFStyleAttention(hidden, heads, use_xpu=True).to(device)
    xpu.load_state_dict(ref.state_dict())
    angles = torch.rand(s, hidden // heads // 2, device=device) * 6.3
    cos, sin = angles.cos(), angles.sin()
    x = torch.randn(b, s, hidden, device=device)
    for model in (ref, xpu):
        model(x, cos, sin).square().mean().backward()
    for (name, p), p_ref in zip(xpu.named_parameters(), ref.parameters()):
        assert_close(to_numpy(p.grad), to_numpy(p_ref.grad), "float32", name, factor=10)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", list(TDT))
@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("grad", ["contiguous", "transposed", "expanded"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_topk_softmax_every_layout(device, dtype, renormalize, grad, layout):
    gen = torch.Generator().manual_seed(5)
    k = 3
    base_shape, view = rows_view(layout, SHAPE)
    base = torch.randn(base_shape, generator=gen).to(device, TDT[dtype]).requires_grad_()
    weights, indices = xt.topk_softmax(view(base), k, renormalize=renormalize)
    gshape, gview = grad_view(grad, SHAPE[:-1] + (k,))
    dw = gview(torch.randn(gshape, generator=gen).to(device))
    weights.backward(dw)
    b64 = base.detach().double().cpu().requires_grad_()
    x64 = view(b64)
    ref_idx = x64.sort(dim=-1, descending=True, stable=True).indices[..., :k]  # ties: lower index
    p = torch.softmax(x64, -1).gather(-1, ref_idx)
    ref_w = p / p.sum(-1, keepdim=True) if renormalize else p
    ref_w.backward(dw.double().cpu())
    assert torch.equal(indices.cpu().long(), ref_idx), "indices differ"
    assert_close(to_numpy(weights), to_numpy(ref_w), dtype, "weights")
    assert_close(to_numpy(base.grad), to_numpy(b64.grad), dtype, "dlogits")
