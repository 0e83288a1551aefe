"""Command line: `python -m xpuruntime info`."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `xpuruntime` command."""
    parser = argparse.ArgumentParser(prog="xpuruntime")
    sub = parser.add_subparsers(dest="command", required=True)
    info_cmd = sub.add_parser("info", help="build, devices, frontends and kernels")
    info_cmd.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    from . import info

    facts = info()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(f"xpuruntime {facts['version']}")
    print(f"  CUDA built: {facts['cuda_built']} (sm_{facts['cuda_architectures']}), "
          f"devices: {facts['cuda_devices']}")
    print(f"  XLA FFI API: {facts['xla_ffi_api']}")
    print(f"  ONNX Runtime library: {facts['onnxruntime_library']}")
    print(f"  TensorRT plugin library: {facts['tensorrt_library']}")
    print("  frontends: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in facts["frontends"].items()))
    print("  devices:")
    for d in facts.get("devices", []):
        if "error" in d:
            print(f"    {d['device']}: {d['error']}")
            continue
        cc = d.get("compute_capability")
        extra = f", sm_{cc[0]}{cc[1]}, {d['multiprocessor_count']} SMs" if cc else ""
        print(f"    {d['device']}: {d['name']}{extra}, {d['free_memory'] / 2**30:.1f} of "
              f"{d['total_memory'] / 2**30:.1f} GiB free")
    for dev, st in facts.get("memory", {}).get("pools", {}).items():
        if "error" not in st:
            print(f"  pool {dev}: {st['allocated_bytes']} allocated, {st['reserved_bytes']} reserved bytes")
    print("  kernels:")
    for k in facts["kernels"]:
        print(f"    {k['op']:<14} {k['direction']:<9} {k['device']:<5} "
              f"{','.join(k['dtypes']):<26} {','.join(k['policies'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
