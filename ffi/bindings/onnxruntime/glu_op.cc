// ONNX ops SwiGLU(gate, up) -> y and GeGLU(gate, up) -> y: y = act(gate) * up,
// elementwise. One compute function, the op's entry point as the kernel state.
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

namespace xpu::ort {
namespace {

struct State {
  const char* name;  // ONNX op type, for messages
  Status (*forward)(const ops::GluForwardArgs&, const ExecContext&);
  Policy policy;
};

struct SwiGLU {
  static constexpr const char* kName = "SwiGLU";
  static constexpr auto kForward = &ops::swiglu_forward;
};
struct GeGLU {
  static constexpr const char* kName = "GeGLU";
  static constexpr auto kForward = &ops::geglu_forward;
};

template <typename Op>
Status read(const OrtKernelInfo* info, State* out) {
  *out = State{Op::kName, Op::kForward, attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::GluForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.gate));
  XPU_RETURN_IF_ERROR(call.input(1, &a.up));
  if (!a.gate.present()) return InvalidArgument(s->name, ": input 'gate' is missing");
  XPU_RETURN_IF_ERROR(call.output(0, a.gate.shape.data(), a.gate.ndim, &a.y));
  return s->forward(a, ExecContext{call.stream(), s->policy});
}

}  // namespace

void add_glu(std::vector<CustomOp*>& out) {
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return typed_schema<State, read<SwiGLU>, run>("SwiGLU", dev, {t, t}, {t}, {}, {});
  });
  add_float_variants(out, [](ONNXTensorElementDataType t, DeviceKind dev) {
    return typed_schema<State, read<GeGLU>, run>("GeGLU", dev, {t, t}, {t}, {}, {});
  });
}

}  // namespace xpu::ort
