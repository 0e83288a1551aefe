// rope's op specs (operands, outputs, attributes) and its kernels.
#include "kernels/common/spec_util.h"
#include "kernels/rope/rope_kernels.h"

namespace xpu::ops {
namespace {

// x and dy take any B, S, H strides (Hugging Face's q.transpose(1, 2)), cos and sin any
// S stride (0: expanded): see rope.cc.
constexpr InputSpec kForwardInputs[] = {
    {"x", Role::kRows, DTypeRule::kFloat, false, /*strided=*/true},
    {"cos", Role::kTable, DTypeRule::kFloatOrF32, false, /*strided=*/true},
    {"sin", Role::kTable, DTypeRule::kFloatOrF32, false, /*strided=*/true},
};
constexpr OutputSpec kForwardOutputs[] = {{"y", ShapeRule::kLike, 0, OutputDType::kLikeRef}};
constexpr InputSpec kBackwardInputs[] = {
    {"dy", Role::kRows, DTypeRule::kFloat, false, /*strided=*/true},
    {"cos", Role::kTable, DTypeRule::kFloatOrF32, false, /*strided=*/true},
    {"sin", Role::kTable, DTypeRule::kFloatOrF32, false, /*strided=*/true},
};
constexpr OutputSpec kBackwardOutputs[] = {{"dx", ShapeRule::kLike, 0, OutputDType::kLikeRef}};
constexpr AttrSpec kAttrs[] = {
    {.name = "interleaved", .onnx_name = "interleaved", .type = AttrType::kBool,
     .default_number = 0, .min = 0, .max = 1},
};

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return rope_forward({.x = in[0], .cos = in[1], .sin = in[2], .y = out[0],
                       .interleaved = attrs[0].number != 0},
                      ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return rope_backward({.dy = in[0], .cos = in[1], .sin = in[2], .dx = out[0],
                        .interleaved = attrs[0].number != 0},
                       ctx);
}

constexpr OpSpec kRopeForward{.op = "rope", .onnx_type = "RoPE", .direction = Direction::kForward,
    .inputs = kForwardInputs, .outputs = kForwardOutputs, .attrs = kAttrs, .run = run_forward};
constexpr OpSpec kRopeBackward{.op = "rope", .onnx_type = "RoPE", .direction = Direction::kBackward,
    .inputs = kBackwardInputs, .outputs = kBackwardOutputs, .attrs = kAttrs, .run = run_backward};

}  // namespace

XPU_OP_SPECS(rope, kRopeForward, kRopeBackward, rope_detail)

}  // namespace xpu::ops
