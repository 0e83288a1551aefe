// cross_entropy's op specs (operands, outputs, attributes, workspace) and its kernels.
#include "kernels/common/spec_util.h"
#include "kernels/cross_entropy/cross_entropy_kernels.h"

namespace xpu::ops {
namespace {

constexpr InputSpec kForwardInputs[] = {
    {"logits", Role::kRows, DTypeRule::kFloat},
    {"labels", Role::kLabels, DTypeRule::kIndex},
};
constexpr OutputSpec kForwardOutputs[] = {
    {"loss", ShapeRule::kLoss, 0, OutputDType::kF32, OutputUse::kResult, -1, "reduction"},
    {"lse", ShapeRule::kLeading, 0, OutputDType::kF32, OutputUse::kSaved},
};
constexpr InputSpec kBackwardInputs[] = {
    {"dloss", Role::kScalar, DTypeRule::kF32},
    {"logits", Role::kRows, DTypeRule::kFloat},
    {"labels", Role::kLabels, DTypeRule::kIndex},
    {"lse", Role::kRowStat, DTypeRule::kF32},
};
constexpr OutputSpec kBackwardOutputs[] = {
    {"dlogits", ShapeRule::kLike, 1, OutputDType::kLikeRef},
};
constexpr AttrSpec kAttrs[] = {
    {.name = "ignore_index", .onnx_name = "ignore_index", .type = AttrType::kInt,
     .default_number = -100},
    {.name = "label_smoothing", .onnx_name = "label_smoothing", .type = AttrType::kFloat,
     .default_number = 0, .min = 0, .max = 1},
    {.name = "reduction", .onnx_name = "reduction", .type = AttrType::kString,
     .default_text = "mean", .choices = "mean|sum|none"},
};

// The options both directions take, from the parsed attributes.
template <typename Args>
Status set_options(const AttrValues& attrs, Args* a) {
  a->ignore_index = static_cast<int64_t>(attrs[0].number);
  a->label_smoothing = static_cast<float>(attrs[1].number);
  return cross_entropy_reduction_from_name(attrs[2].text, &a->reduction);
}

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView& ws, const AttrValues& attrs, const ExecContext& ctx) {
  CrossEntropyForwardArgs a{
      .logits = in[0], .labels = in[1], .loss = out[0], .lse = out[1], .workspace = ws};
  XPU_RETURN_IF_ERROR(set_options(attrs, &a));
  return cross_entropy_forward(a, ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView& ws, const AttrValues& attrs, const ExecContext& ctx) {
  CrossEntropyBackwardArgs a{.dloss = in[0], .logits = in[1], .labels = in[2], .lse = in[3],
                             .dlogits = out[0], .workspace = ws};
  XPU_RETURN_IF_ERROR(set_options(attrs, &a));
  return cross_entropy_backward(a, ctx);
}

CrossEntropyReduction reduction_of(const AttrValues& attrs) {
  CrossEntropyReduction r = CrossEntropyReduction::kMean;
  (void)cross_entropy_reduction_from_name(attrs[2].text, &r);  // parse_attrs checked it
  return r;
}

int64_t forward_workspace(std::span<const TensorView> in, const AttrValues& attrs) {
  return cross_entropy_forward_workspace_bytes(rows_of(in[0]), reduction_of(attrs));
}

int64_t backward_workspace(std::span<const TensorView> in, const AttrValues& attrs) {
  return cross_entropy_backward_workspace_bytes(rows_of(in[1]), reduction_of(attrs));
}

constexpr OpSpec kCrossEntropyForward{.op = "cross_entropy", .onnx_type = "CrossEntropy",
    .direction = Direction::kForward, .inputs = kForwardInputs, .outputs = kForwardOutputs,
    .attrs = kAttrs, .workspace_bytes = forward_workspace, .run = run_forward};
constexpr OpSpec kCrossEntropyBackward{.op = "cross_entropy", .onnx_type = "CrossEntropy",
    .direction = Direction::kBackward, .inputs = kBackwardInputs, .outputs = kBackwardOutputs,
    .attrs = kAttrs, .workspace_bytes = backward_workspace, .run = run_backward};

}  // namespace

XPU_OP_SPECS(cross_entropy, kCrossEntropyForward, kCrossEntropyBackward, cross_entropy_detail)

}  // namespace xpu::ops
