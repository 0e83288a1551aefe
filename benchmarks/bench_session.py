"""xpuruntime.InferenceSession benchmarks (reported, not asserted). Writes JSON.

1. Overhead: ``InferenceSession.run`` against a raw ``onnxruntime.InferenceSession`` on
   the same one-node model (an xpuruntime Softmax) and a tiny input [1, 8]: host time per
   call, median of repeats. CPU: raw ``run`` with numpy and raw IO binding. CUDA: raw IO
   binding of device pointers with the same provider options (the session's stream as
   ``user_compute_stream``) and run options (no synchronization), calls pipelined and
   waited for once; also each call waited for. Goal: within 5 us of raw ORT with IO
   binding on CUDA.
2. A decoder block (benchmarks/_decoder_block.py) with xpuruntime nodes against the same
   block with standard ONNX ops, both in ORT's CUDA provider: device time per run from
   events on the session's stream, f32 and f16, and the ratio standard / xpuruntime.

Usage: python3 benchmarks/bench_session.py [--out FILE] [--no-cuda] [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import xpuruntime  # noqa: E402
from xpuruntime import InferenceSession  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402

import _decoder_block as block  # noqa: E402

NO_SYNC = "disable_synchronize_execution_providers"


def per_call_us(fn, sync=lambda: None, calls: int = 2000, repeats: int = 9) -> float:
    """Median over ``repeats`` of (``calls`` calls, then ``sync()``) / calls, in us."""
    for _ in range(200):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times) * 1e6


def tiny_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["R", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["R", 8])
    node = helper.make_node("Softmax", ["x"], ["y"], name="softmax", domain=xo.DOMAIN)
    return xo.make_model(helper.make_graph([node], "tiny", [x], [y]))


def overhead_cpu() -> dict:
    model = tiny_model()
    x = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32)
    sess = InferenceSession(model)
    raw = xo.inference_session(model)
    binding, out = raw.io_binding(), np.empty_like(x)

    def raw_bound():
        binding.bind_input("x", "cpu", 0, TensorProto.FLOAT, x.shape, x.ctypes.data)
        binding.bind_output("y", "cpu", 0, TensorProto.FLOAT, out.shape, out.ctypes.data)
        raw.run_with_iobinding(binding)

    r = {"raw_run_numpy_us": per_call_us(lambda: raw.run(None, {"x": x})),
         "raw_io_binding_us": per_call_us(raw_bound),
         "session_run_us": per_call_us(lambda: sess.run({"x": x})),
         "session_run_list_us": per_call_us(lambda: sess.run([x]))}
    r["session_minus_raw_io_binding_us"] = r["session_run_us"] - r["raw_io_binding_us"]
    r["session_minus_raw_run_us"] = r["session_run_us"] - r["raw_run_numpy_us"]
    return r


def overhead_cuda() -> dict:
    model = tiny_model()
    dev = xpuruntime.Device("cuda", 0)
    sess = InferenceSession(model, device=dev)
    s = sess.stream
    # The input is produced on the session's stream: no cross-stream wait in either loop.
    x = xpuruntime.asarray(np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32))
    x = x.to(dev, stream=s)
    s.synchronize()
    opts = xo.session_options()
    raw = ort.InferenceSession(model.SerializeToString(), opts, providers=[(
        "CUDAExecutionProvider", {"device_id": "0", "user_compute_stream": str(s.handle)})])
    out = xpuruntime.empty((1, 8), "float32", device=dev, stream=s)
    binding = raw.io_binding()
    no_sync = ort.RunOptions()
    no_sync.add_run_config_entry(NO_SYNC, "1")

    def raw_bound(run_options):
        binding.bind_input("x", "cuda", 0, TensorProto.FLOAT, x.shape, x.ptr)
        binding.bind_output("y", "cuda", 0, TensorProto.FLOAT, out.shape, out.ptr)
        raw.run_with_iobinding(binding, run_options)

    r = {"raw_io_binding_us": per_call_us(lambda: raw_bound(no_sync), s.synchronize),
         "session_run_us": per_call_us(lambda: sess.run([x]), s.synchronize),
         "raw_io_binding_synced_each_us": per_call_us(lambda: raw_bound(None), calls=500),
         "session_run_synced_each_us": per_call_us(lambda: (sess.run([x]), s.synchronize()),
                                                   calls=500)}
    r["session_minus_raw_io_binding_us"] = r["session_run_us"] - r["raw_io_binding_us"]
    r["goal_within_5us"] = r["session_minus_raw_io_binding_us"] <= 5.0
    return r


def device_ms(sess, feed, runs: int = 20) -> float:
    """Device time of one run from timing events on the session's stream (median of 5)."""
    for _ in range(3):
        sess.run(feed)
    out = []
    for _ in range(5):
        start = xpuruntime.Event(timing=True, device=sess.device).record(sess.stream)
        for _ in range(runs):
            sess.run(feed)
        end = xpuruntime.Event(timing=True, device=sess.device).record(sess.stream)
        out.append(start.elapsed_ms(end) / runs)
    return statistics.median(out)


def placement_counts(sess) -> dict:
    counts: dict = {}
    for provider in (sess.placement or {}).values():
        counts[provider] = counts.get(provider, 0) + 1
    return counts


def session_for(model, dev):
    """strict first; when ORT keeps nodes on the CPU, the run is still measured, and said."""
    try:
        return InferenceSession(model, device=dev), None
    except xpuruntime.KernelNotFoundError as exc:
        return InferenceSession(model, device=dev, strict=False), str(exc)


def decoder(dims: block.Dims, dtypes: list[str]) -> dict:
    dev = xpuruntime.Device("cuda", 0)
    source = "torch export" if block.torch_export_available() else "onnx.helper"
    make = block.torch_block if source == "torch export" else block.onnx_block
    w = block.weights(dims)
    rows = []
    for dtype in dtypes:
        host = block.inputs(dims, dtype)
        feed = {k: xpuruntime.asarray(v).to(dev) for k, v in host.items()}
        row = {"dtype": dtype}
        outs = {}
        for name, fused in (("xpuruntime", True), ("standard", False)):
            sess, refused = session_for(make(dims, dtype, fused, w), dev)
            row[f"{name}_ms"] = device_ms(sess, feed)
            row[f"{name}_placement"] = placement_counts(sess)
            if refused:
                row[f"{name}_strict_refused"] = refused
            (y,) = sess.run(feed)
            outs[name] = np.asarray(y.to("cpu")).astype(np.float64)
        row["ratio_standard_over_xpuruntime"] = row["standard_ms"] / row["xpuruntime_ms"]
        ref = outs["standard"]
        row["relative_difference"] = float(np.linalg.norm(outs["xpuruntime"] - ref) /
                                           np.linalg.norm(ref))
        rows.append(row)
    return {"source": source, "dims": vars(dims) | {"head": dims.head}, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/session.json")
    parser.add_argument("--no-cuda", action="store_true", help="CPU overhead only")
    parser.add_argument("--small", action="store_true", help="a small decoder block (smoke run)")
    parser.add_argument("--dtypes", default="float32,float16")
    args = parser.parse_args()
    cuda = (not args.no_cuda and any(d.kind == "cuda" for d in xpuruntime.devices())
            and "CUDAExecutionProvider" in ort.get_available_providers())
    report = {"xpuruntime": xpuruntime.__version__, "onnxruntime": ort.__version__,
              "python": platform.python_version(),
              "devices": [d.name for d in xpuruntime.devices()],
              "overhead_cpu": overhead_cpu()}
    if cuda:
        report["overhead_cuda"] = overhead_cuda()
        dims = block.Dims(2, 64, 256, 4, 512) if args.small else block.Dims()
        report["decoder_block_cuda"] = decoder(dims, args.dtypes.split(","))
    else:
        report["cuda"] = "skipped: no CUDA device or no CUDAExecutionProvider"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
