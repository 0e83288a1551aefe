// softmax's op specs (operands, outputs, attributes) and its kernels.
#include "kernels/common/spec_util.h"
#include "kernels/softmax/softmax_kernels.h"

namespace xpu::ops {
namespace {

constexpr InputSpec kForwardInputs[] = {{"x", Role::kRows, DTypeRule::kFloat}};
constexpr OutputSpec kForwardOutputs[] = {{"y", ShapeRule::kLike, 0, OutputDType::kLikeRef}};
constexpr InputSpec kBackwardInputs[] = {
    {"dy", Role::kRows, DTypeRule::kFloat},
    {"y", Role::kRows, DTypeRule::kFloat},  // the forward's output
};
constexpr OutputSpec kBackwardOutputs[] = {{"dx", ShapeRule::kLike, 1, OutputDType::kLikeRef}};
constexpr AttrSpec kAttrs[] = {
    {.name = "scale", .onnx_name = "scale", .type = AttrType::kFloat, .default_number = 1.0},
};

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return softmax_forward({.x = in[0], .y = out[0], .scale = float(attrs[0].number)}, ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return softmax_backward(
      {.dy = in[0], .y = in[1], .dx = out[0], .scale = float(attrs[0].number)}, ctx);
}

constexpr OpSpec kSoftmaxForward{.op = "softmax", .onnx_type = "Softmax",
    .direction = Direction::kForward, .inputs = kForwardInputs, .outputs = kForwardOutputs,
    .attrs = kAttrs, .run = run_forward};
constexpr OpSpec kSoftmaxBackward{.op = "softmax", .onnx_type = "Softmax",
    .direction = Direction::kBackward, .inputs = kBackwardInputs, .outputs = kBackwardOutputs,
    .attrs = kAttrs, .run = run_backward};

}  // namespace

XPU_OP_SPECS(softmax, kSoftmaxForward, kSoftmaxBackward, softmax_detail)

}  // namespace xpu::ops
