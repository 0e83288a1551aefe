// rms_norm's op specs (operands, outputs, attributes, workspace) and its kernels.
#include "kernels/common/spec_util.h"
#include "kernels/rms_norm/rms_norm_kernels.h"

namespace xpu::ops {
namespace {

constexpr InputSpec kForwardInputs[] = {
    {"x", Role::kRows, DTypeRule::kFloat},
    {"weight", Role::kParameter, DTypeRule::kFloat},
    {"residual", Role::kRows, DTypeRule::kFloat, true},
};
constexpr OutputSpec kForwardOutputs[] = {
    {"y", ShapeRule::kLike, 0, OutputDType::kLikeRef},
    {"h", ShapeRule::kLike, 0, OutputDType::kLikeRef, OutputUse::kResult, /*present_if=*/2},
};
constexpr InputSpec kBackwardInputs[] = {
    {"dy", Role::kRows, DTypeRule::kFloat},
    {"x", Role::kRows, DTypeRule::kFloat},  // h when a residual was added
    {"weight", Role::kParameter, DTypeRule::kFloat},
    {"dh", Role::kRows, DTypeRule::kFloat, true},
};
constexpr OutputSpec kBackwardOutputs[] = {
    {"dx", ShapeRule::kLike, 1, OutputDType::kLikeRef},  // also the residual's gradient
    {"dweight", ShapeRule::kLike, 2, OutputDType::kLikeRef},
};
constexpr AttrSpec kAttrs[] = {
    {.name = "eps", .onnx_name = "epsilon", .type = AttrType::kFloat, .default_number = 1e-6,
     .min = 0},
};

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return rms_norm_forward({.x = in[0], .weight = in[1], .residual = in[2], .y = out[0],
                           .h = out[1], .eps = float(attrs[0].number)},
                          ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView& ws, const AttrValues& attrs, const ExecContext& ctx) {
  return rms_norm_backward({.dy = in[0], .x = in[1], .weight = in[2], .dh = in[3], .dx = out[0],
                            .dweight = out[1], .workspace = ws, .eps = float(attrs[0].number)},
                           ctx);
}

int64_t backward_workspace(std::span<const TensorView> in, const AttrValues&) {
  return rms_norm_backward_workspace_bytes(rows_of(in[1]), cols_of(in[1]));
}

constexpr OpSpec kRmsNormForward{.op = "rms_norm", .onnx_type = "RMSNorm",
    .direction = Direction::kForward, .inputs = kForwardInputs, .outputs = kForwardOutputs,
    .attrs = kAttrs, .run = run_forward, .revision = 2};  // 2: no rstd output
constexpr OpSpec kRmsNormBackward{.op = "rms_norm", .onnx_type = "RMSNorm",
    .direction = Direction::kBackward, .inputs = kBackwardInputs, .outputs = kBackwardOutputs,
    .attrs = kAttrs, .workspace_bytes = backward_workspace, .run = run_backward,
    .revision = 2};  // 2: rstd recomputed, not an input

}  // namespace

XPU_OP_SPECS(rms_norm, kRmsNormForward, kRmsNormBackward, rms_norm_detail)

}  // namespace xpu::ops
