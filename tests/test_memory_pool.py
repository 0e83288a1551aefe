"""The caching memory pool and the runtime API on the CPU device (no GPU needed).

Private pools (``_core.test_pool``) make block-level checks deterministic; the
CPU device's own pool is used through ``xpuruntime.memory``. A test pool with
manual events keeps freed blocks pending on their stream, which is how the
cross-stream rule is exercised without a GPU.
"""

from __future__ import annotations

import bisect
import gc
import random
import threading

import numpy as np
import pytest

import xpuruntime
from xpuruntime import memory
from xpuruntime._native import core

from conftest import HAS_JAX, HAS_TORCH  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20


def blocks(pool):
    return [(b["ptr"], b["size"], b["free"]) for seg in pool.snapshot() for b in seg["blocks"]]


# ---- size classes, splitting, coalescing, reuse ----------------------------------------------------

def test_small_requests_split_one_segment():
    p = core.test_pool()
    a = p.allocate(1000)
    b = p.allocate(1000)
    s = p.stats()
    assert s["reserved_bytes"] == 2 * MiB and s["segments"] == 1
    assert s["allocated_bytes"] == 2048 and s["requested_bytes"] == 2000
    assert s["cache_misses"] == 1 and s["cache_hits"] == 1 and s["upstream_allocs"] == 1
    assert b.ptr == a.ptr + 1024  # 512-byte rounding, split from the front
    assert blocks(p) == [(a.ptr, 1024, False), (b.ptr, 1024, False), (b.ptr + 1024, 2 * MiB - 2048, True)]


def test_size_classes():
    p = core.test_pool()
    z = p.allocate(0)  # a unique, valid block even for zero bytes
    assert p.stats()["allocated_bytes"] == 512
    one = p.allocate(MiB)  # largest small request: from the 2 MiB small segment
    assert p.stats()["segments"] == 1
    huge = p.allocate(11 * MiB + 5)  # above 10 MiB: its own segment, rounded to 2 MiB
    assert p.stats()["reserved_bytes"] == 2 * MiB + 12 * MiB
    large = p.allocate(MiB + 1)  # large: a shared 20 MiB segment (the 12 MiB one is not split
    assert p.stats()["reserved_bytes"] == 2 * MiB + 12 * MiB + 20 * MiB  # for a < 1 MiB remainder)
    mid = p.allocate(5 * MiB)  # split from the 20 MiB segment's remainder
    assert p.stats()["segments"] == 3 and mid.ptr == large.ptr + MiB + 512
    sizes = sorted((seg["size"], seg["small"]) for seg in p.snapshot())
    assert sizes == [(2 * MiB, True), (12 * MiB, False), (20 * MiB, False)]
    assert len({z.ptr, one.ptr, large.ptr, huge.ptr, mid.ptr}) == 5


def test_coalescing_free_neighbours():
    p = core.test_pool()
    a, b, c = (p.allocate(4 * KiB) for _ in range(3))
    ap, cp = a.ptr, c.ptr
    b.free()
    assert p.stats()["free_blocks"] == 2  # b, and the tail after c
    a.free()  # merges with b
    assert blocks(p)[:2] == [(ap, 8 * KiB, True), (cp, 4 * KiB, False)]
    c.free()  # merges with both sides: the segment is one free block again
    assert blocks(p) == [(ap, 2 * MiB, True)]
    s = p.stats()
    assert s["free_blocks"] == 1 and s["allocated_bytes"] == 0 and s["active_bytes"] == 0


def test_reuse_without_new_segments():
    p = core.test_pool()
    first = p.allocate(300 * KiB)
    ptr = first.ptr
    first.free()
    for _ in range(50):
        x = p.allocate(300 * KiB)
        assert x.ptr == ptr
        x.free()
    s = p.stats()
    assert s["upstream_allocs"] == 1 and s["cache_hits"] == 50 and s["alloc_count"] == s["free_count"] == 51


def test_empty_cache_returns_free_segments():
    p = core.test_pool()
    keep = p.allocate(KiB)
    tmp = p.allocate(12 * MiB)
    tmp.free()
    assert p.stats()["reserved_bytes"] == 14 * MiB
    p.empty_cache()
    s = p.stats()
    assert s["reserved_bytes"] == 2 * MiB and s["upstream_frees"] == 1  # the segment in use stays
    keep.free()
    p.empty_cache()
    assert p.stats()["reserved_bytes"] == 0 and p.stats()["segments"] == 0


# ---- limits and out of memory ------------------------------------------------------------------------

def test_limit_oom_message_and_recovery():
    p = core.test_pool()
    p.set_limit(4 * MiB)
    a = p.allocate(3 * MiB)  # a 20 MiB segment would exceed the limit: a tight one is used
    assert p.stats()["reserved_bytes"] == 3 * MiB
    with pytest.raises(xpuruntime.OutOfMemoryError) as info:
        p.allocate(2 * MiB)
    msg = str(info.value)
    assert isinstance(info.value, MemoryError)
    for part in ("out of memory on cpu:0", "tried to allocate 2097152 bytes", "3145728 bytes allocated",
                 "3145728 bytes reserved", "bytes free on the device", "pool limit 4194304 bytes"):
        assert part in msg, (part, msg)
    e = info.value
    assert (e.device, e.requested_bytes, e.allocated_bytes, e.reserved_bytes, e.limit_bytes) == \
        ("cpu:0", 2 * MiB, 3 * MiB, 3 * MiB, 4 * MiB)
    assert e.device_free_bytes > 0
    assert p.stats()["oom_count"] == 1
    a.free()
    b = p.allocate(2 * MiB)  # fits after releasing the cached segment
    assert p.stats()["reserved_bytes"] <= 4 * MiB
    b.free()
    p.set_limit(0)
    p.allocate(30 * MiB).free()


def test_oom_releases_cached_segments_and_retries():
    p = core.test_pool()
    p.allocate(KiB).free()  # caches a 2 MiB small segment
    assert p.stats()["reserved_bytes"] == 2 * MiB
    p.set_limit(3 * MiB)
    x = p.allocate(2 * MiB)  # needs the cached segment returned first
    s = p.stats()
    assert s["upstream_frees"] == 1 and s["reserved_bytes"] == 2 * MiB and s["oom_count"] == 0
    x.free()


def test_device_oom_raises_and_process_survives():
    before = memory.stats("cpu")
    with pytest.raises(xpuruntime.OutOfMemoryError, match="tried to allocate 4611686018427387904 bytes"):
        memory.allocate(1 << 62, device="cpu")
    with pytest.raises(MemoryError):
        memory.allocate(1 << 50, device="cpu")
    after = memory.stats("cpu")
    assert after["oom_count"] >= before["oom_count"] + 2
    with memory.allocate(1234, device="cpu") as b:
        b.fill(7)
        assert b.count_not_equal(7) == 0


def test_set_limit_on_device_pool():
    memory.empty_cache("cpu")
    base = memory.stats("cpu")["reserved_bytes"]
    memory.set_limit(base + 4 * MiB, device="cpu")
    try:
        assert memory.stats("cpu")["limit"] == base + 4 * MiB
        with pytest.raises(xpuruntime.OutOfMemoryError, match="pool limit"):
            memory.allocate(8 * MiB, device="cpu")
        memory.allocate(MiB, device="cpu").free()
    finally:
        memory.set_limit(0, device="cpu")
    assert memory.stats("cpu")["limit"] == 0


# ---- statistics --------------------------------------------------------------------------------------

def test_stats_return_to_zero_and_peaks():
    gc.collect()
    base = memory.stats("cpu")
    bufs = [memory.allocate(n, device="cpu") for n in (1, 511, 513, 100 * KiB, 3 * MiB, 15 * MiB)]
    mid = memory.stats("cpu")
    assert mid["requested_bytes"] - base["requested_bytes"] == 1 + 511 + 513 + 100 * KiB + 3 * MiB + 15 * MiB
    # Rounded block sizes (cached remainders of earlier tests may serve the large ones unsplit).
    extra = (mid["allocated_bytes"] - base["allocated_bytes"]) - (mid["requested_bytes"] - base["requested_bytes"])
    assert 511 + 1 + 511 <= extra < 2 * MiB
    assert mid["alloc_count"] - base["alloc_count"] == 6
    for b in bufs:
        b.free()
    end = memory.stats("cpu")
    for key in ("requested_bytes", "allocated_bytes", "active_bytes"):
        assert end[key] == base[key], key
    assert end["free_count"] - base["free_count"] == 6
    assert end["allocated_bytes_peak"] >= mid["allocated_bytes"]
    memory.reset_peak_stats("cpu")
    reset = memory.stats("cpu")
    assert reset["allocated_bytes_peak"] == reset["allocated_bytes"]
    assert reset["reserved_bytes_peak"] == reset["reserved_bytes"]


def test_buffer_freed_by_garbage_collection():
    gc.collect()
    base = memory.stats("cpu")["allocated_bytes"]
    b = memory.allocate(64 * KiB, device="cpu")
    assert memory.stats("cpu")["allocated_bytes"] == base + 64 * KiB
    del b
    gc.collect()
    assert memory.stats("cpu")["allocated_bytes"] == base


# ---- the cross-stream rule (manual events stand in for unfinished GPU work) -------------------------

def test_block_freed_on_a_is_reused_on_a_at_once_and_on_b_only_after_its_work():
    p = core.test_pool(manual_events=True)
    A, B = 0x1000, 0x2000  # stream handles; the host test pool never dereferences them
    x = p.allocate(12 * MiB, A)  # own segment: the only block of its size
    xp = x.ptr
    x.free()  # freed on A: bound to A (an event is recorded once another stream asks)
    s = p.stats()
    assert s["pending_events"] == 1 and s["active_bytes"] == 12 * MiB and s["allocated_bytes"] == 0
    y = p.allocate(12 * MiB, B)  # A's work is not done: B must not get it
    assert y.ptr != xp
    z = p.allocate(12 * MiB, A)  # A's own later work is ordered after the free
    assert z.ptr == xp
    z.free(A)  # no event yet: reusing on A needs none
    assert p.pending_upstream_events() == 0
    v = p.allocate(12 * MiB, B)  # B asks: A's free gets its event now, still pending
    assert v.ptr != xp and p.pending_upstream_events() == 1
    p.complete_events()  # A's queued work finished
    w = p.allocate(12 * MiB, B)
    assert w.ptr == xp
    assert p.stats()["pending_events"] == 0


def test_free_on_another_stream_orders_on_that_stream():
    p = core.test_pool(manual_events=True)
    A, B = 0x1000, 0x2000
    x = p.allocate(12 * MiB, A)
    xp = x.ptr
    x.free(B)  # last used by work on B
    assert p.allocate(12 * MiB, A).ptr != xp
    assert p.allocate(12 * MiB, B).ptr == xp


def test_pending_blocks_coalesce_once_done_and_empty_cache_waits():
    p = core.test_pool(manual_events=True)
    A = 0x1000
    a, b = p.allocate(4 * KiB, A), p.allocate(4 * KiB, A)
    a.free()
    b.free()  # same stream: merge (stream-bound, no event recorded yet)
    assert p.stats()["pending_events"] == 1
    p.empty_cache()  # waits for the events, then releases the wholly free segment
    assert p.stats()["reserved_bytes"] == 0 and p.stats()["pending_events"] == 0


def test_oom_waits_for_pending_frees_before_failing():
    p = core.test_pool(manual_events=True)
    A, B = 0x1000, 0x2000
    p.set_limit(12 * MiB)
    x = p.allocate(12 * MiB, A)
    xp = x.ptr
    x.free()
    y = p.allocate(12 * MiB, B)  # at the limit: the pool waits for A's work instead of failing
    assert y.ptr == xp and p.stats()["oom_count"] == 0


def test_retired_stream_is_never_recorded_on_again():
    p = core.test_pool(manual_events=True)
    A, B = 0x1000, 0x2000
    x, y = p.allocate(12 * MiB, A), p.allocate(14 * MiB, A)
    xp, yp = x.ptr, y.ptr
    y.free()  # bound to A
    assert p.stats()["pending_events"] == 1
    p.retire_stream(A)  # A is destroyed (after its work finished)
    assert p.stats()["pending_events"] == 0
    z = p.allocate(14 * MiB, B)
    assert z.ptr == yp  # its frees are reusable everywhere
    x.free()  # its allocation stream is gone: no event may be recorded on the dead handle
    assert p.pending_upstream_events() == 0
    assert p.allocate(12 * MiB, B).ptr == xp


# ---- concurrency -------------------------------------------------------------------------------------

def test_sixteen_threads_random_alloc_free_never_overlap_or_leak():
    gc.collect()
    base = memory.stats("cpu")
    lock = threading.Lock()
    starts: list[int] = []
    ends: dict[int, int] = {}
    errors: list[str] = []
    sizes = [1, 100, 512, 4000, 64 * KiB, 700 * KiB, MiB + 3, 3 * MiB, 12 * MiB]

    def claim(ptr, n):
        with lock:
            i = bisect.bisect(starts, ptr)
            if i > 0 and ends[starts[i - 1]] > ptr:
                errors.append(f"overlap at 0x{ptr:x}")
            if i < len(starts) and starts[i] < ptr + n:
                errors.append(f"overlap at 0x{ptr:x}")
            starts.insert(i, ptr)
            ends[ptr] = ptr + n

    def release(ptr):
        with lock:
            starts.remove(ptr)
            del ends[ptr]

    def worker(tid):
        rng = random.Random(tid)
        live = []
        try:
            for it in range(300):
                if live and (rng.random() < 0.45 or len(live) > 12):
                    buf, pattern = live.pop(rng.randrange(len(live)))
                    bad = buf.count_not_equal(pattern)
                    if bad:
                        errors.append(f"thread {tid}: {bad} bytes overwritten")
                    release(buf.ptr)
                    buf.free()
                else:
                    n = rng.choice(sizes)
                    buf = memory.allocate(n, device="cpu")
                    claim(buf.ptr, max(n, 1))
                    pattern = tid + 1 + 16 * (it % 15)  # pattern % 16 identifies the thread
                    buf.fill(pattern)
                    live.append((buf, pattern))
            for buf, pattern in live:
                if buf.count_not_equal(pattern):
                    errors.append(f"thread {tid}: overwritten at the end")
                release(buf.ptr)
                buf.free()
        except Exception as exc:  # surfaces in the main thread
            errors.append(f"thread {tid}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    end = memory.stats("cpu")
    for key in ("requested_bytes", "allocated_bytes", "active_bytes"):
        assert end[key] == base[key], key
    assert end["alloc_count"] - base["alloc_count"] == end["free_count"] - base["free_count"] > 1000
    memory.empty_cache("cpu")


# ---- Python API and errors ---------------------------------------------------------------------------

def test_buffer_api_and_use_after_free():
    b = memory.allocate(100, device="cpu")
    assert b.nbytes == 100 and b.device == xpuruntime.Device("cpu") and b.ptr % 256 == 0
    b.free()
    assert b.freed
    for use in (lambda: b.ptr, lambda: b.fill(1), lambda: b.count_not_equal(0), lambda: b.free()):
        with pytest.raises(xpuruntime.InvalidArgumentError, match="the buffer was freed"):
            use()
    with memory.allocate(10, device="cpu") as c:
        c.fill(3)
    assert c.freed
    assert "freed" in repr(c)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="negative size"):
        memory.allocate(-1, device="cpu")
    with pytest.raises(TypeError):
        memory.allocate(1.5, device="cpu")
    with pytest.raises(ValueError, match="negative size"):
        core.allocate(-5, "cpu", 0, 0)
    with pytest.raises(xpuruntime.InvalidArgumentError, match="invalid CPU device index 1"):
        memory.allocate(10, device=xpuruntime.Device("cpu", 1))
    with pytest.raises(ValueError, match="invalid CUDA device index 99"):
        xpuruntime.Device("cuda", 99)
    with pytest.raises(ValueError, match="invalid CUDA device index 99"):
        core.allocate(10, "cuda", 99, 0)
    with pytest.raises(ValueError, match="unknown device kind"):
        xpuruntime.Device("tpu")
    with pytest.raises(ValueError, match="negative dimension"):
        xpuruntime.empty((2, -1), "float32", device="cpu")
    with pytest.raises(ValueError, match="unsupported dtype"):
        xpuruntime.empty((2,), "float8", device="cpu")


def test_allocate_pinned():
    b = memory.allocate_pinned(4096)
    assert b.device.kind == "cpu" and b.nbytes == 4096
    assert b.pinned == (xpuruntime.info()["memory"]["pinned_host_memory"])
    b.fill(5)
    assert b.count_not_equal(5) == 0
    b.free()


# ---- devices, streams, events on the CPU ------------------------------------------------------------

def test_devices_and_current_device():
    devs = xpuruntime.devices()
    assert devs[0] == xpuruntime.Device("cpu")
    assert all(d.kind == "cuda" for d in devs[1:]) and len(devs) == 1 + core.cuda_device_count()
    cpu = devs[0]
    assert cpu.total_memory > 0 and cpu.free_memory > 0 and cpu.multiprocessor_count >= 1
    assert cpu.compute_capability is None and isinstance(cpu.name, str)
    with cpu:
        assert xpuruntime.get_device() == cpu
        seen = []
        t = threading.Thread(target=lambda: seen.append(xpuruntime.get_device()))
        t.start()
        t.join()
        assert seen[0] == (xpuruntime.Device("cuda", 0) if len(devs) > 1 else cpu)  # thread-local
    assert xpuruntime.Device("cuda:0" if len(devs) > 1 else "cpu:0") in devs
    previous = xpuruntime.get_device()
    try:
        assert xpuruntime.set_device("cpu") == cpu and xpuruntime.get_device() == cpu
    finally:
        xpuruntime.set_device(previous)


def test_cpu_streams_and_events_are_working_no_ops():
    s = xpuruntime.Stream(device="cpu")
    assert s.query() and s.__cuda_stream__() == (0, 0)
    s.synchronize()
    e = s.record()
    assert e.query()
    s.wait(e)
    s.wait(xpuruntime.Stream(device="cpu"))
    start, end = xpuruntime.Event(timing=True, device="cpu"), xpuruntime.Event(timing=True, device="cpu")
    start.record(s)
    end.record(s)
    assert end.elapsed_ms(start) <= 0 <= start.elapsed_ms(end)
    with pytest.raises(ValueError, match="timing=True"):
        xpuruntime.Event(device="cpu").elapsed_ms(end)
    with xpuruntime.stream(s):
        assert xpuruntime.current_stream("cpu") is s
    assert xpuruntime.current_stream("cpu") is not s


def test_stream_protocols_and_stream_handle():
    from xpuruntime import _arrays

    class Foreign:
        def __cuda_stream__(self):
            return (0, 1234)

    s = xpuruntime.Stream.from_handle(Foreign(), device="cpu")
    assert s.handle == 0  # CPU streams are trivial
    info = _arrays.ArrayInfo("float32", (1,), "cuda", 0)
    assert _arrays.stream_handle(Foreign(), None, info) == 1234
    fake_cuda = xpuruntime.Stream.__new__(xpuruntime.Stream)
    fake_cuda.device, fake_cuda.priority, fake_cuda._handle, fake_cuda._owned = xpuruntime.Device("cpu"), 0, 77, False
    assert _arrays.stream_handle(fake_cuda, None, info) == 77
    with pytest.raises(TypeError):
        xpuruntime.Stream.from_handle("not a stream")


# ---- arrays and DLPack -------------------------------------------------------------------------------

def test_empty_numpy_zero_copy_and_lifetime():
    gc.collect()
    base = memory.stats("cpu")["allocated_bytes"]
    a = xpuruntime.empty((4, 8), "float32", device="cpu")
    assert a.__dlpack_device__() == (1, 0) and a.nbytes == 128 and a.is_contiguous()
    assert not hasattr(a, "__cuda_array_interface__")
    n = np.from_dlpack(a)
    assert n.ctypes.data == a.ptr and n.shape == (4, 8) and n.dtype == np.float32
    n[:] = 3.0
    del a
    gc.collect()
    assert memory.stats("cpu")["allocated_bytes"] == base + 512  # the numpy view keeps it alive
    assert float(n.sum()) == 96.0
    del n
    gc.collect()
    assert memory.stats("cpu")["allocated_bytes"] == base


def test_asarray_from_numpy_is_zero_copy_and_strided():
    x = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]
    a = xpuruntime.asarray(x)
    assert a.ptr == x.ctypes.data and a.shape == (4, 3) and a.strides == (6, 2) and not a.is_contiguous()
    assert np.array_equal(np.from_dlpack(a), x)
    with pytest.raises(ValueError, match="contiguous"):
        a.to("cpu")
    b = xpuruntime.asarray(np.arange(10, dtype=np.int16))
    c = b.to("cpu")
    assert c.ptr != b.ptr and np.array_equal(np.asarray(c), np.arange(10, dtype=np.int16))
    with pytest.raises(TypeError, match="DLPack"):
        xpuruntime.asarray([1, 2, 3])


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
def test_dlpack_round_trip_torch_cpu():
    import torch
    a = xpuruntime.empty((3, 5), "bfloat16", device="cpu")
    t = torch.from_dlpack(a)
    assert t.data_ptr() == a.ptr and t.dtype == torch.bfloat16 and t.shape == (3, 5)
    t.fill_(2.5)
    src = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    b = xpuruntime.asarray(src)
    assert b.ptr == src.data_ptr() and b.dtype == "float32"
    back = torch.from_dlpack(b)
    assert back.data_ptr() == src.data_ptr() and torch.equal(back, src)
    assert torch.from_dlpack(a).float().sum().item() == 2.5 * 15


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
def test_dlpack_round_trip_jax_cpu():
    import jax
    import jax.numpy as jnp
    a = xpuruntime.empty((16,), "float32", device="cpu")
    np.from_dlpack(a)[:] = np.arange(16, dtype=np.float32)
    j = jnp.from_dlpack(a)
    assert j.unsafe_buffer_pointer() == a.ptr and float(j.sum()) == 120.0
    src = jax.device_put(jnp.arange(8, dtype=jnp.float32), jax.devices("cpu")[0])
    b = xpuruntime.asarray(src)
    assert b.ptr == src.unsafe_buffer_pointer() and b.shape == (8,)
    assert np.array_equal(np.from_dlpack(b), np.arange(8, dtype=np.float32))


def test_info_lists_devices_and_memory():
    facts = xpuruntime.info()
    assert facts["devices"][0]["device"] == "cpu:0"
    assert facts["memory"]["rounding_bytes"] == 512
    assert "cpu:0" in facts["memory"]["pools"]


@pytest.mark.skipif(core.cuda_device_count() == 0, reason="needs a CUDA device besides the CPU")
def test_stream_of_another_device_is_rejected():
    s = xpuruntime.Stream(device="cpu")
    with pytest.raises(ValueError, match="stream of cpu:0"):
        memory.allocate(10, device="cuda:0", stream=s)
