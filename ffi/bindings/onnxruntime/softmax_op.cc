// ONNX op Softmax(x) -> y over the last axis; attribute `scale` (float, default 1.0).
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/softmax.h"

namespace xpu::ort {
namespace {

struct State {
  float scale;
  Policy policy;
};

Status read(const OrtKernelInfo* info, State* out) {
  *out = State{attr_float(info, "scale", 1.0f), attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::SoftmaxForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.x));
  if (!a.x.present()) return InvalidArgument("Softmax: input 'x' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.x.shape.data(), a.x.ndim, &a.y));
  a.scale = s->scale;
  return ops::softmax_forward(a, ExecContext{call.stream(), s->policy});
}

}  // namespace

void add_softmax(std::vector<CustomOp*>& out) {
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return typed_schema<State, read, run>("Softmax", dev, {t}, {t}, {}, {});
  });
}

}  // namespace xpu::ort
