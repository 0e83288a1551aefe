// ONNX op RMSNorm(x, weight[, residual]) -> (y[, h]); attribute `epsilon`.
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/rms_norm.h"

namespace xpu::ort {
namespace {

struct State {
  float eps;
  Policy policy;
};

Status read(const OrtKernelInfo* info, State* out) {
  *out = State{attr_float(info, "epsilon", 1e-6f), attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::RmsNormForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.x));
  XPU_RETURN_IF_ERROR(call.input(1, &a.weight));
  XPU_RETURN_IF_ERROR(call.input(2, &a.residual));
  if (!a.x.present()) return InvalidArgument("RMSNorm: input 'x' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.x.shape.data(), a.x.ndim, &a.y));
  if (a.residual.present()) XPU_RETURN_IF_ERROR(call.output(1, a.x.shape.data(), a.x.ndim, &a.h));
  a.eps = s->eps;
  return ops::rms_norm_forward(a, ExecContext{call.stream(), s->policy});
}

}  // namespace

void add_rms_norm(std::vector<CustomOp*>& out) {
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return typed_schema<State, read, run>("RMSNorm", dev, {t, t, t}, {t, t}, {false, false, true}, {false, true});
  });
}

}  // namespace xpu::ort
