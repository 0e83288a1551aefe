"""Hostile input to the runtime API and the argument checks of the native ops
(issue 15, groups 3-5): views never see freed memory, garbage never becomes a
silent value, and every error is one of xpuruntime's classes with a message that
names the call and the argument (never a binding's signature dump)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import xpuruntime as xr
from xpuruntime import _arrays, memory, ops
from xpuruntime._native import core

from conftest import HAS_TORCH  # noqa: E402

KiB = 1 << 10
BINDING_DUMPS = ("incompatible function arguments", "Invoked with", "'invalid'", "has no attribute")


def allocated() -> int:
    gc.collect()
    return memory.stats("cpu")["requested_bytes"]


def view_of(buf, n: int) -> xr.Array:
    """A float32 Array over the first 4 * n bytes of ``buf``."""
    return xr.Array(buf, buf.ptr, (n,), "float32", None, xr.Device("cpu"), None)


def assert_clean(exc: BaseException, *parts: str) -> None:
    """An xpuruntime error whose message has every part and no binding dump."""
    assert isinstance(exc, xr.Error), (type(exc), exc)
    msg = str(exc)
    for part in parts:
        assert part in msg, (part, msg)
    for dump in BINDING_DUMPS:
        assert dump not in msg, (dump, msg)


# ---- the error vocabulary ---------------------------------------------------------------------------

def test_error_classes():
    assert issubclass(xr.InvalidArgumentError, xr.Error) and issubclass(xr.InvalidArgumentError, ValueError)
    assert issubclass(xr.InvalidArgumentTypeError, xr.InvalidArgumentError)
    assert issubclass(xr.InvalidArgumentTypeError, TypeError)
    assert issubclass(xr.KernelNotFoundError, xr.Error) and issubclass(xr.KernelNotFoundError, LookupError)
    assert issubclass(xr.OutOfMemoryError, xr.Error) and issubclass(xr.OutOfMemoryError, MemoryError)
    with pytest.raises(xr.KernelNotFoundError, match="rms_norm"):
        core.lookup_kernel("rms_norm", "forward", "cpu", "float64", "fast")


def test_policy_and_rank_errors_are_invalid_argument():
    with pytest.raises(xr.InvalidArgumentError, match="unknown policy 'bogus'"):
        xr.set_policy("bogus")
    with pytest.raises(xr.InvalidArgumentTypeError, match="policy must be a string"):
        xr.set_policy(3)
    # Ranks above 8 fold their leading axes (OPS.md); a layout whose leading axes do
    # not collapse into one cannot fold without a copy, and says so.
    assert ops.softmax(np.ones((1,) * 9 + (4,), np.float32)).shape == (1,) * 9 + (4,)
    x = np.ones((2, 3) + (1,) * 7 + (4,), np.float32).swapaxes(0, 1)
    with pytest.raises(xr.InvalidArgumentError, match=r"softmax: input 'x' .* leading axes that do "
                                                      "not collapse into one; make it contiguous"):
        ops.softmax(x)


# ---- use after free: views keep the memory ----------------------------------------------------------

def test_numpy_view_keeps_freed_buffer_alive_and_never_aliases():
    base = allocated()
    buf = memory.allocate(4 * KiB, device="cpu")
    arr = view_of(buf, KiB)
    n = np.from_dlpack(arr)
    n[:] = 1.5
    assert buf.views == 1
    buf.free()
    assert buf.freed and allocated() == base + 4 * KiB  # still held by the view
    nxt = memory.allocate(4 * KiB, device="cpu")
    assert nxt.ptr != n.ctypes.data  # the next allocation gets other memory
    nxt.fill(0xFF)
    assert np.all(n == 1.5)
    del arr
    assert allocated() == base + 8 * KiB and np.all(n == 1.5)  # numpy still holds the export
    del n
    assert buf.views == 0 and allocated() == base + 4 * KiB  # the deferred free happened
    nxt.free()
    assert allocated() == base


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
def test_torch_view_keeps_freed_buffer_alive_and_never_aliases():
    import torch
    base = allocated()
    buf = memory.allocate(4 * KiB, device="cpu")
    t = torch.from_dlpack(view_of(buf, KiB))
    t.fill_(2.0)
    buf.free()
    nxt = memory.allocate(4 * KiB, device="cpu")
    assert nxt.ptr != t.data_ptr()
    nxt.fill(0)
    assert torch.all(t == 2.0)
    assert allocated() == base + 8 * KiB
    del t
    assert allocated() == base + 4 * KiB
    nxt.free()
    assert allocated() == base


def test_view_escaping_a_with_block():
    base = allocated()
    with memory.allocate(256, device="cpu") as buf:
        n = np.from_dlpack(view_of(buf, 64))
        n[:] = 7.0
    assert buf.freed and allocated() == base + 256
    memory.allocate(256, device="cpu").fill(0)  # dropped at once: reused, must not be n's memory
    assert np.all(n == 7.0)
    del n
    assert allocated() == base


def test_empty_array_storage_freed_under_a_view():
    base = allocated()
    a = xr.empty((32,), "float32", device="cpu")
    n = np.from_dlpack(a)
    n[:] = 4.0
    a._owner.free()  # the storage Buffer, freed by hand
    del a
    memory.allocate(128, device="cpu").fill(0)
    assert np.all(n == 4.0) and allocated() == base + 128
    del n
    assert allocated() == base


def test_test_pool_views_defer_the_release():
    p = core.test_pool()
    buf = p.allocate(4 * KiB)
    n = np.from_dlpack(view_of(buf, KiB))
    buf.free()
    assert p.stats()["allocated_bytes"] == 4 * KiB
    assert p.allocate(4 * KiB).ptr != n.ctypes.data
    del n
    gc.collect()
    assert p.stats()["allocated_bytes"] == 0


def test_no_view_of_a_freed_buffer_and_no_double_free():
    buf = memory.allocate(64, device="cpu")
    buf.free()
    with pytest.raises(xr.InvalidArgumentError, match="the buffer was freed"):
        view_of_freed = xr.Array(buf, 0, (16,), "float32", None, xr.Device("cpu"), None)  # noqa: F841
    with pytest.raises(xr.InvalidArgumentError, match="the buffer was freed"):
        buf.free()
    live = memory.allocate(64, device="cpu")
    n = np.from_dlpack(view_of(live, 16))
    live.free()
    with pytest.raises(xr.InvalidArgumentError, match="the buffer was freed"):
        live.free()  # a deferred free is still the one free
    with pytest.raises(xr.InvalidArgumentError, match="the buffer was freed"):
        live.fill(0)
    del n


# ---- garbage values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [256, -1, 2**70])
def test_fill_value_out_of_byte_range(value):
    with memory.allocate(16, device="cpu") as b:
        b.fill(3)
        with pytest.raises(xr.InvalidArgumentError, match=r"Buffer.fill: 'value' must be a byte in 0..255"):
            b.fill(value)
        with pytest.raises(xr.InvalidArgumentError, match=r"count_not_equal: 'value' must be a byte"):
            b.count_not_equal(value)
        assert b.count_not_equal(3) == 0  # nothing was written


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_fill_value_of_the_wrong_type(value):
    with memory.allocate(16, device="cpu") as b:
        with pytest.raises(xr.InvalidArgumentTypeError, match="'value' must be an int in 0..255"):
            b.fill(value)


def test_fill_edges_and_numpy_ints():
    with memory.allocate(16, device="cpu") as b:
        b.fill(255)
        assert b.count_not_equal(255) == 0
        b.fill(np.uint8(9))
        assert b.count_not_equal(np.int64(9)) == 0


@pytest.mark.parametrize("nbytes", [True, False, 1.0, 2.5, "8", None, [8]])
def test_allocate_sizes_that_are_not_ints(nbytes):
    with pytest.raises(xr.InvalidArgumentTypeError, match="allocate: 'nbytes' must be an int") as info:
        memory.allocate(nbytes, device="cpu")
    assert isinstance(info.value, TypeError)
    with pytest.raises(xr.InvalidArgumentTypeError, match="allocate_pinned: 'nbytes' must be an int"):
        memory.allocate_pinned(nbytes)


def test_allocate_numpy_int_size():
    with memory.allocate(np.int64(100), device="cpu") as b:
        assert b.nbytes == 100


@pytest.mark.parametrize("shape", [(2.7, 3), (2, 3.0), (True, 3), "ab", None, 2.0, ((2,), 3)])
def test_empty_shapes_that_are_not_ints(shape):
    with pytest.raises(xr.InvalidArgumentTypeError, match="empty: 'shape"):
        xr.empty(shape, device="cpu")


def test_empty_numpy_dims():
    a = xr.empty((np.int32(2), np.int64(3)), device="cpu")
    assert a.shape == (2, 3) and all(type(d) is int for d in a.shape)
    assert xr.empty(np.int64(5), device="cpu").shape == (5,)


@pytest.mark.parametrize("call", [
    lambda: xr.empty((2**40, 2**40), device="cpu"),
    lambda: memory.allocate(2**70, device="cpu"),
    lambda: memory.allocate(2**63, device="cpu"),
])
def test_sizes_beyond_any_device_are_out_of_memory(call):
    with pytest.raises(xr.OutOfMemoryError, match="out of memory on cpu:0: tried to allocate") as info:
        call()
    e = info.value
    assert e.device == "cpu:0" and e.requested_bytes >= 2**63 and e.device_free_bytes > 0
    assert e.allocated_bytes >= 0 and e.reserved_bytes >= 0 and e.limit_bytes == 0
    memory.allocate(64, device="cpu").free()  # the pool is fine


def test_set_limit_values():
    with pytest.raises(xr.InvalidArgumentError, match=r"set_limit: limit 9223372036854775808 is beyond"):
        memory.set_limit(2**63, device="cpu")
    with pytest.raises(xr.InvalidArgumentError) as info:
        memory.set_limit(-1, device="cpu")
    assert "set_limit: negative limit -1" in str(info.value) and "allocate" not in str(info.value)
    for bad in (1.5, True, "1", None):
        with pytest.raises(xr.InvalidArgumentTypeError, match="set_limit: 'nbytes' must be an int"):
            memory.set_limit(bad, device="cpu")
    assert memory.stats("cpu")["limit"] == 0  # nothing was set


def test_stream_and_device_exit_without_enter():
    s = xr.Stream(device="cpu")
    with pytest.raises(xr.InvalidArgumentError, match="Stream.__exit__: .* is not the current stream"):
        s.__exit__(None, None, None)
    a, b = xr.Stream(device="cpu"), xr.Stream.from_handle(5, device="cpu")
    with a:
        assert xr.current_stream("cpu") is a
        with pytest.raises(xr.InvalidArgumentError, match="not the current stream"):
            b.__exit__(None, None, None)  # out of order: a stays current
        assert xr.current_stream("cpu") is a
    assert xr.current_stream("cpu") is not a and b.handle == 0
    with pytest.raises(xr.InvalidArgumentError, match="Device.__exit__: cpu:0 was not entered"):
        xr.Device("cpu").__exit__(None, None, None)


@pytest.mark.parametrize("make", [
    lambda: xr.Stream(device="cpu", priority="high"),
    lambda: xr.Stream(device="cpu", priority=2**40),
    lambda: xr.Stream.from_handle("not a stream"),
    lambda: xr.Stream.from_handle(-1, device="cpu"),
    lambda: xr.Stream.from_handle(2**64, device="cpu"),
    lambda: memory.allocate(8, device="cpu", stream="not a stream"),
    lambda: xr.Event(device="cpu").elapsed_ms(3),
])
def test_stream_arguments(make):
    with pytest.raises(xr.InvalidArgumentError) as info:
        make()
    assert_clean(info.value)


# ---- array arguments: the one check (xpuruntime._arrays) ---------------------------------------------

class RefusesExport:
    """A DLPack producer that refuses to export."""

    def __dlpack__(self, **kwargs):
        raise BufferError("no export today")

    def __dlpack_device__(self):
        return (1, 0)


def _bad_arrays():
    cases = [
        (RefusesExport(), xr.InvalidArgumentError, "cannot be read through DLPack: BufferError: no export today"),
        (np.ones((2, 4), np.complex64), xr.InvalidArgumentError, "has dtype complex64"),
        (np.ones((2, 4), np.uint16), xr.InvalidArgumentError, "has dtype uint16"),
        (np.ones((2, 4), ">f4"), xr.InvalidArgumentError, "is big-endian (>f4)"),
        (np.ones((2, 4), object), xr.InvalidArgumentError, "dtype object"),
        ([[1.0] * 4] * 2, xr.InvalidArgumentTypeError, "must be an array"),
        (None, xr.InvalidArgumentTypeError, "is required"),
        (3.0, xr.InvalidArgumentTypeError, "must be an array"),
    ]
    try:
        import ml_dtypes  # a jax dependency
        cases.append((np.ones((2, 4), ml_dtypes.bfloat16), xr.InvalidArgumentError,
                      "has dtype bfloat16, which numpy cannot"))
    except ImportError:
        pass
    if HAS_TORCH:
        import torch
        cases += [
            (torch.ones((2, 4), dtype=torch.uint16), xr.InvalidArgumentError, "has dtype uint16"),
            (torch.ones((2, 4), dtype=torch.complex64), xr.InvalidArgumentError, "has dtype complex64"),
        ]
    return cases


BAD_ARRAYS = _bad_arrays()


@pytest.mark.parametrize("value, cls, part", BAD_ARRAYS, ids=[c[2][:24] for c in BAD_ARRAYS])
def test_array_info_names_op_and_argument(value, cls, part):
    with pytest.raises(cls) as info:
        _arrays.array_info(value, "rms_norm", "weight")
    assert_clean(info.value, "rms_norm: 'weight' ", part)


def test_array_info_accepts_what_ops_take():
    assert _arrays.array_info(None, "rms_norm", "residual", optional=True) is None
    info = _arrays.array_info(np.ones((3, 5), np.float32)[:, ::2], "rms_norm", "x")
    assert info == ("float32", (3, 3), "cpu", 0)
    assert _arrays.array_info(xr.empty((2,), "int64", device="cpu"), "ce", "labels").dtype == "int64"


@pytest.mark.parametrize("value, cls, part", BAD_ARRAYS, ids=[c[2][:24] for c in BAD_ARRAYS])
def test_native_op_bad_first_operand(value, cls, part):
    """Through the public op today: a project error, the problem named, no dump."""
    with pytest.raises(xr.InvalidArgumentError) as info:
        ops.softmax(value)
    assert_clean(info.value, part)


def test_asarray_bad_inputs():
    for value, cls, part in BAD_ARRAYS:
        if part.startswith("has dtype u") or part.startswith("has dtype c"):
            continue  # asarray wraps any DLPack dtype, complex and uint16 included
        with pytest.raises(cls) as info:
            xr.asarray(value)
        assert_clean(info.value, "asarray: 'obj'", part)
    assert xr.asarray(np.ones(3, np.complex64)).dtype == "complex64"


# ---- scalar and attribute arguments ------------------------------------------------------------------

def test_int_arg():
    assert _arrays.int_arg(np.int16(-3), "cross_entropy", "ignore_index") == -3
    with pytest.raises(xr.InvalidArgumentError, match=r"cross_entropy: 'ignore_index' must be in \[-9223372036854775808"):
        _arrays.int_arg(2**70, "cross_entropy", "ignore_index")
    for bad in (1.0, "3", None, True):
        with pytest.raises(xr.InvalidArgumentTypeError, match="cross_entropy: 'ignore_index' must be an int"):
            _arrays.int_arg(bad, "cross_entropy", "ignore_index")
    assert _arrays.int_arg(True, "topk_softmax", "k", allow_bool=True) == 1


def test_float_bool_str_args():
    assert _arrays.float_arg(2, "softmax", "scale") == 2.0 and _arrays.float_arg(np.float16(0.5), "s", "x") == 0.5
    for bad in ("abc", None, True, [1.0]):
        with pytest.raises(xr.InvalidArgumentTypeError, match="rms_norm: 'eps' must be a number"):
            _arrays.float_arg(bad, "rms_norm", "eps")
    with pytest.raises(xr.InvalidArgumentError, match="is not representable as a float"):
        _arrays.float_arg(10**400, "rms_norm", "eps")
    with pytest.raises(xr.InvalidArgumentError, match=r"'label_smoothing' must be in \[0.0, 1.0\], got nan"):
        _arrays.float_arg(float("nan"), "cross_entropy", "label_smoothing", lo=0.0, hi=1.0)
    assert _arrays.bool_arg(np.bool_(True), "rope", "interleaved") is True and not _arrays.bool_arg(0, "r", "i")
    for bad in (2, 1.0, "yes", None):
        with pytest.raises(xr.InvalidArgumentTypeError, match="rope: 'interleaved' must be a bool"):
            _arrays.bool_arg(bad, "rope", "interleaved")
    assert _arrays.str_arg("sum", "ce", "reduction", ("mean", "sum", "none")) == "sum"
    with pytest.raises(xr.InvalidArgumentTypeError, match="cross_entropy: 'reduction' must be a string"):
        _arrays.str_arg(1, "cross_entropy", "reduction")
    with pytest.raises(xr.InvalidArgumentError, match="must be one of mean, sum, none; got 'avg'"):
        _arrays.str_arg("avg", "cross_entropy", "reduction", ("mean", "sum", "none"))


def test_attribute_values():
    # What _arrays.attr_value checked, now the core's attribute rule (its binding).
    x = np.ones((1, 2, 1, 4), np.float32)
    cos = np.ones((2, 2), np.float32)
    assert ops.rope(x, cos, cos, interleaved=True).shape == x.shape
    logits, labels = np.ones((3, 4), np.float32), np.zeros(3, np.int32)
    assert np.isfinite(ops.cross_entropy(logits, labels, ignore_index=np.int64(-100),
                                         label_smoothing=np.float32(0.5), reduction="mean"))
    with pytest.raises(xr.InvalidArgumentError, match="cross_entropy: attribute 'ignore_index' must be an integer in"):
        ops.cross_entropy(logits, labels, ignore_index=2**70)
    for bad in (None, [1], np.ones(2), object()):
        with pytest.raises(xr.InvalidArgumentTypeError, match="softmax: attribute 'scale' must be a bool, int, float or str"):
            ops.softmax(logits, scale=bad)


def test_dtype_name():
    assert _arrays.dtype_name(np.float16) == "float16" and _arrays.dtype_name(np.dtype("int32")) == "int32"
    if HAS_TORCH:
        import torch
        assert _arrays.dtype_name(torch.bfloat16) == "bfloat16"
    with pytest.raises(xr.InvalidArgumentError, match="empty: 'dtype': unsupported dtype 'float8'"):
        _arrays.dtype_name("float8")


# ---- op validation messages ---------------------------------------------------------------------------

def test_rope_cos_dtype_message():
    x = np.ones((1, 2, 1, 4), np.float32)
    half = np.ones((2, 2), np.float16)
    with pytest.raises(xr.InvalidArgumentError) as info:
        ops.rope(x, half, half)
    assert_clean(info.value, "rope: 'cos' must be float32 (the dtype of 'x'), got float16")
    assert "float32 or float32" not in str(info.value)
    if HAS_TORCH:
        import torch
        xb = torch.ones((1, 2, 1, 4), dtype=torch.bfloat16)
        th = torch.ones((2, 2), dtype=torch.float16)
        with pytest.raises(xr.InvalidArgumentError, match=r"'cos' must be float32 or bfloat16 \(the dtype of 'x'\)"):
            ops.rope(xb, th, th)


def test_layer_norm_backward_calls_its_stats_inputs():
    x = np.ones((4, 8), np.float32)
    w = np.ones(8, np.float32)
    strided = np.ones(8, np.float32)[::2]
    with pytest.raises(xr.InvalidArgumentError) as info:
        ops.layer_norm_backward(x, x, w, mean=strided, rstd=np.ones(4, np.float32))
    assert_clean(info.value, "layer_norm: ", "'mean' must be")
    assert "output" not in str(info.value)  # an input of the backward


# ---- the runtime API under garbage: right, or an xpuruntime error ---------------------------------------

GARBAGE = [None, True, -1, 1.5, "x", [1], 2**70, object(), np.float32(2.0)]
RUNTIME_CALLS = {
    "allocate(nbytes)": lambda v: memory.allocate(v, device="cpu"),
    "allocate(device)": lambda v: memory.allocate(8, device=v),
    "allocate(stream)": lambda v: memory.allocate(8, device="cpu", stream=v),
    "allocate_pinned": lambda v: memory.allocate_pinned(v),
    "set_limit": lambda v: memory.set_limit(v, device="cpu"),
    "stats(device)": lambda v: memory.stats(v),
    "empty(shape)": lambda v: xr.empty(v, device="cpu"),
    "empty(dtype)": lambda v: xr.empty((2,), v, device="cpu"),
    "Device(kind)": lambda v: xr.Device(v),
    "Device(index)": lambda v: xr.Device("cpu", v),
    "Stream(priority)": lambda v: xr.Stream(device="cpu", priority=v),
    "Stream.from_handle": lambda v: xr.Stream.from_handle(v, device="cpu"),
    "Buffer.fill": lambda v: memory.allocate(8, device="cpu").fill(v),
    "Buffer.free(stream)": lambda v: memory.allocate(8, device="cpu").free(stream=v),
    "asarray": lambda v: xr.asarray(v),
    "Array.to": lambda v: xr.empty((2,), device="cpu").to(v),
}


@pytest.mark.parametrize("call", list(RUNTIME_CALLS))
def test_runtime_api_garbage(call):
    for value in GARBAGE:
        try:
            RUNTIME_CALLS[call](value)
        except xr.Error as exc:
            assert_clean(exc)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{call}({value!r}) raised {type(exc).__name__}: {exc}")
    memory.set_limit(0, device="cpu")


# ---- op arguments through the public ops ---------------------------------------------------------------

f32 = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
OP_CASES = [
    pytest.param("rms_norm", "'weight'", lambda: ops.rms_norm(f32(2, 4), None), id="weight-None"),
    pytest.param("rms_norm", "'eps'", lambda: ops.rms_norm(f32(2, 4), f32(4), eps="abc"), id="eps-str"),
    pytest.param("cross_entropy", "'reduction'", lambda: ops.cross_entropy(
        f32(2, 4), np.zeros(2, np.int64), reduction=5), id="reduction-int"),
    pytest.param("rms_norm", "'weight'", lambda: ops.rms_norm(f32(2, 4), [1.0] * 4), id="weight-list"),
    pytest.param("rms_norm", "'x'", lambda: ops.rms_norm(np.ones((2, 4), np.complex64), f32(4)),
                 id="x-complex"),
    pytest.param("cross_entropy", "'ignore_index'", lambda: ops.cross_entropy(
        f32(2, 4), np.zeros(2, np.int64), ignore_index=2**70), id="ignore_index-2**70"),
    pytest.param("cross_entropy", "'labels'", lambda: ops.cross_entropy(f32(2, 4), [0, 1]), id="labels-list"),
    pytest.param("softmax", "'x'", lambda: ops.softmax(np.ones((2, 4), object)), id="x-object"),
    pytest.param("softmax", "policy", lambda: ops.softmax(f32(2, 4), policy=3), id="policy-int"),
]


@pytest.mark.parametrize("op, arg, call", OP_CASES)
def test_native_op_arguments_name_op_and_argument(op, arg, call):
    with pytest.raises(xr.InvalidArgumentError) as info:
        call()
    assert_clean(info.value, op, arg)
