// layer_norm's op specs (operands, outputs, attributes, workspace) and its kernels.
#include "kernels/common/spec_util.h"
#include "kernels/layer_norm/layer_norm_kernels.h"

namespace xpu::ops {
namespace {

constexpr InputSpec kForwardInputs[] = {
    {"x", Role::kRows, DTypeRule::kFloat},
    {"weight", Role::kParameter, DTypeRule::kFloat},
    {"bias", Role::kParameter, DTypeRule::kFloat},
};
constexpr OutputSpec kForwardOutputs[] = {
    {"y", ShapeRule::kLike, 0, OutputDType::kLikeRef},
    {"mean", ShapeRule::kLeading, 0, OutputDType::kF32, OutputUse::kSaved},
    {"rstd", ShapeRule::kLeading, 0, OutputDType::kF32, OutputUse::kSaved},
};
constexpr InputSpec kBackwardInputs[] = {
    {"dy", Role::kRows, DTypeRule::kFloat},
    {"x", Role::kRows, DTypeRule::kFloat},
    {"weight", Role::kParameter, DTypeRule::kFloat},
    {"mean", Role::kRowStat, DTypeRule::kF32},
    {"rstd", Role::kRowStat, DTypeRule::kF32},
};
constexpr OutputSpec kBackwardOutputs[] = {
    {"dx", ShapeRule::kLike, 1, OutputDType::kLikeRef},
    {"dweight", ShapeRule::kLike, 2, OutputDType::kLikeRef},
    {"dbias", ShapeRule::kLike, 2, OutputDType::kLikeRef},
};
constexpr AttrSpec kAttrs[] = {
    {.name = "eps", .onnx_name = "epsilon", .type = AttrType::kFloat, .default_number = 1e-5,
     .min = 0},
};

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return layer_norm_forward({.x = in[0], .weight = in[1], .bias = in[2], .y = out[0],
                             .mean = out[1], .rstd = out[2], .eps = float(attrs[0].number)},
                            ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView& ws, const AttrValues&, const ExecContext& ctx) {
  return layer_norm_backward({.dy = in[0], .x = in[1], .weight = in[2], .mean = in[3],
                              .rstd = in[4], .dx = out[0], .dweight = out[1], .dbias = out[2],
                              .workspace = ws},
                             ctx);
}

int64_t backward_workspace(std::span<const TensorView> in, const AttrValues&) {
  return layer_norm_backward_workspace_bytes(rows_of(in[1]), cols_of(in[1]));
}

constexpr OpSpec kLayerNormForward{.op = "layer_norm", .onnx_type = "LayerNorm",
    .direction = Direction::kForward, .inputs = kForwardInputs, .outputs = kForwardOutputs,
    .attrs = kAttrs, .run = run_forward};
constexpr OpSpec kLayerNormBackward{.op = "layer_norm", .onnx_type = "LayerNorm",
    .direction = Direction::kBackward, .inputs = kBackwardInputs, .outputs = kBackwardOutputs,
    .attrs = kAttrs, .workspace_bytes = backward_workspace, .run = run_backward};

}  // namespace

XPU_OP_SPECS(layer_norm, kLayerNormForward, kLayerNormBackward, layer_norm_detail)

}  // namespace xpu::ops
