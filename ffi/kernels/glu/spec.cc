// The op specs of swiglu and geglu (one operand list, two entry points) and their kernels.
#include "kernels/common/spec_util.h"
#include "kernels/glu/glu_kernels.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

namespace xpu::ops {
namespace {

constexpr InputSpec kForwardInputs[] = {
    {"gate", Role::kRows, DTypeRule::kFloat},
    {"up", Role::kRows, DTypeRule::kFloat},
};
constexpr OutputSpec kForwardOutputs[] = {{"y", ShapeRule::kLike, 0, OutputDType::kLikeRef}};
constexpr InputSpec kBackwardInputs[] = {
    {"dy", Role::kRows, DTypeRule::kFloat},
    {"gate", Role::kRows, DTypeRule::kFloat},
    {"up", Role::kRows, DTypeRule::kFloat},
};
constexpr OutputSpec kBackwardOutputs[] = {
    {"dgate", ShapeRule::kLike, 1, OutputDType::kLikeRef},
    {"dup", ShapeRule::kLike, 1, OutputDType::kLikeRef},
};

template <Status (*Forward)(const GluForwardArgs&, const ExecContext&)>
Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues&, const ExecContext& ctx) {
  return Forward({.gate = in[0], .up = in[1], .y = out[0]}, ctx);
}

template <Status (*Backward)(const GluBackwardArgs&, const ExecContext&)>
Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView&, const AttrValues&, const ExecContext& ctx) {
  return Backward({.dy = in[0], .gate = in[1], .up = in[2], .dgate = out[0], .dup = out[1]}, ctx);
}

void register_kernels(Registry& r, const char* op) {
  glu_detail::register_cpu(r, op);
  XPU_IF_CUDA(glu_detail::register_cuda(r, op));
}

// The four specs differ only in the op's names and entry points.
constexpr OpSpec glu_spec(const char* op, const char* onnx_type, Direction direction, RunFn run) {
  const bool forward = direction == Direction::kForward;
  return {.op = op, .onnx_type = onnx_type, .direction = direction,
          .inputs = forward ? std::span<const InputSpec>(kForwardInputs) : kBackwardInputs,
          .outputs = forward ? std::span<const OutputSpec>(kForwardOutputs) : kBackwardOutputs,
          .run = run};
}
constexpr OpSpec kSwigluForward =
    glu_spec("swiglu", "SwiGLU", Direction::kForward, run_forward<swiglu_forward>);
constexpr OpSpec kSwigluBackward =
    glu_spec("swiglu", "SwiGLU", Direction::kBackward, run_backward<swiglu_backward>);
constexpr OpSpec kGegluForward =
    glu_spec("geglu", "GeGLU", Direction::kForward, run_forward<geglu_forward>);
constexpr OpSpec kGegluBackward =
    glu_spec("geglu", "GeGLU", Direction::kBackward, run_backward<geglu_backward>);

}  // namespace

const OpSpec& swiglu_forward_spec() { return kSwigluForward; }
const OpSpec& swiglu_backward_spec() { return kSwigluBackward; }
const OpSpec& geglu_forward_spec() { return kGegluForward; }
const OpSpec& geglu_backward_spec() { return kGegluBackward; }

void register_swiglu_kernels(Registry& r) { register_kernels(r, "swiglu"); }
void register_geglu_kernels(Registry& r) { register_kernels(r, "geglu"); }

}  // namespace xpu::ops
