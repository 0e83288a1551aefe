// ONNX op Softmax(x) -> y over the last axis; attribute `scale` (float, default 1.0).
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/softmax.h"

namespace xpu::ort {
namespace {

struct State {
  float scale;
  Policy policy;
};

Status create(const OrtKernelInfo* info, void** state) {
  *state = new State{attr_float(info, "scale", 1.0f), attr_policy(info)};
  return Status::Ok();
}

Status compute(void* state, KernelCall& call) {
  const auto* s = static_cast<const State*>(state);
  ops::SoftmaxForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.x));
  if (!a.x.present()) return InvalidArgument("Softmax: input 'x' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.x.shape.data(), a.x.ndim, &a.y));
  a.scale = s->scale;
  return ops::softmax_forward(a, ExecContext{call.stream(), s->policy});
}

void destroy(void* state) { delete static_cast<State*>(state); }

}  // namespace

void add_softmax(std::vector<CustomOp*>& out) {
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return OpSchema{"Softmax", dev, {t}, {t}, {}, {}, create, compute, destroy};
  });
}

}  // namespace xpu::ort
