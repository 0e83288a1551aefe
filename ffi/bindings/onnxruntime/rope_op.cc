// ONNX op RoPE(x, cos, sin) -> y; attribute `interleaved` (int 0/1, default 0).
// x [B, S, H, D] in float, float16 or bfloat16; cos / sin [S, D/2] in float or
// x's element type (one registration per combination).
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/rope.h"

namespace xpu::ort {
namespace {

struct State {
  bool interleaved;
  Policy policy;
};

Status read(const OrtKernelInfo* info, State* out) {
  const int64_t il = attr_int(info, "interleaved", 0);
  if (il != 0 && il != 1)
    return InvalidArgument("RoPE: attribute 'interleaved' must be 0 or 1, got ", il);
  *out = State{il == 1, attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::RopeForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.x));
  XPU_RETURN_IF_ERROR(call.input(1, &a.cos));
  XPU_RETURN_IF_ERROR(call.input(2, &a.sin));
  if (!a.x.present()) return InvalidArgument("RoPE: input 'x' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.x.shape.data(), a.x.ndim, &a.y));
  a.interleaved = s->interleaved;
  return ops::rope_forward(a, ExecContext{call.stream(), s->policy});
}

}  // namespace

void add_rope(std::vector<CustomOp*>& out) {
  constexpr auto kF32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  for (auto t : {kF32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
                 ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16}) {
    for (auto c : {t, kF32}) {
      auto make = [&](DeviceKind dev) {
        return typed_schema<State, read, run>("RoPE", dev, {t, c, c}, {t}, {}, {});
      };
      out.push_back(new CustomOp(make(DeviceKind::kCPU)));
#if XPURUNTIME_WITH_CUDA
      out.push_back(new CustomOp(make(DeviceKind::kCUDA)));
#endif
      if (t == kF32) break;  // cos / sin in x's type and in float are the same registration
    }
  }
}

}  // namespace xpu::ort
