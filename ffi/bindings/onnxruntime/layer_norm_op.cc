// ONNX op LayerNorm(x, weight, bias) -> y; attribute `epsilon` (default 1e-5).
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/layer_norm.h"

namespace xpu::ort {
namespace {

struct State {
  float eps;
  Policy policy;
};

Status read(const OrtKernelInfo* info, State* out) {
  *out = State{attr_float(info, "epsilon", 1e-5f), attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::LayerNormForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.x));
  XPU_RETURN_IF_ERROR(call.input(1, &a.weight));
  XPU_RETURN_IF_ERROR(call.input(2, &a.bias));
  if (!a.x.present()) return InvalidArgument("LayerNorm: input 'x' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.x.shape.data(), a.x.ndim, &a.y));
  a.eps = s->eps;
  return ops::layer_norm_forward(a, ExecContext{call.stream(), s->policy});
}

}  // namespace

void add_layer_norm(std::vector<CustomOp*>& out) {
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return typed_schema<State, read, run>("LayerNorm", dev, {t, t, t}, {t}, {false, false, false}, {false});
  });
}

}  // namespace xpu::ort
