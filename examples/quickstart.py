"""rms_norm through every frontend xpuruntime has: native (numpy), jax.jit,
torch and an ONNX model in xpuruntime.InferenceSession (ONNX Runtime; on CUDA too when
onnxruntime-gpu is installed), each compared with a float64 numpy reference.
Runs on the default device: CUDA when torch/jax see a GPU, else the CPU."""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np

import xpuruntime
from xpuruntime import ops


def reference(x: np.ndarray, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * w


def report(name: str, y, ref: np.ndarray) -> None:
    err = np.abs(np.asarray(y, dtype=np.float64) - ref).max()
    print(f"  {name:<36} max |y - ref| = {err:.3e}")


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4096)).astype(np.float32)
    w = rng.standard_normal(4096).astype(np.float32)
    ref = reference(x, w)
    info = xpuruntime.info()
    print(f"xpuruntime {info['version']}: CUDA built={info['cuda_built']}, "
          f"CUDA devices={info['cuda_devices']}")

    report("native (numpy, cpu)", ops.rms_norm(x, w), ref)

    import jax
    import xpuruntime.jax as xj
    y = jax.jit(xj.rms_norm)(jax.numpy.asarray(x), jax.numpy.asarray(w))
    report(f"jax.jit ({y.devices().pop().platform})", np.asarray(y), ref)

    import torch
    import xpuruntime.interop.torch as xt
    device = "cuda" if torch.cuda.is_available() else "cpu"
    yt = xt.rms_norm(torch.from_numpy(x).to(device), torch.from_numpy(w).to(device))
    report(f"torch.ops.xpuruntime ({device})", yt.cpu().numpy(), ref)

    from onnx import TensorProto, helper
    from xpuruntime.interop import onnxruntime as xo
    t = TensorProto.FLOAT
    node = helper.make_node("RMSNorm", ["x", "w"], ["y"], domain=xo.DOMAIN, epsilon=1e-6)
    graph = helper.make_graph([node], "quickstart",
                              [helper.make_tensor_value_info("x", t, ["R", 4096]),
                               helper.make_tensor_value_info("w", t, [4096])],
                              [helper.make_tensor_value_info("y", t, None)])
    model = xo.make_model(graph)
    sess = xpuruntime.InferenceSession(model)  # xpuruntime's ops registered, CPU
    (yo,) = sess.run({"x": x, "w": w}, like="input")
    report("InferenceSession (onnxruntime, cpu)", yo, ref)

    import onnxruntime
    if info["cuda_devices"] and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        sess = xpuruntime.InferenceSession(model, device="cuda")  # every node on the GPU
        xd, wd = (xpuruntime.asarray(a).to("cuda") for a in (x, w))
        (yd,) = sess.run([xd, wd])  # xpuruntime.Array on cuda:0, zero-copy IO binding
        report("InferenceSession (onnxruntime, cuda)", np.asarray(yd.to("cpu")), ref)


if __name__ == "__main__":
    main()
