// topk_softmax: validation, the entry points, the op spec of each direction and the
// registration of its kernels (the one place that knows all four).
#include "kernels/common/spec_util.h"
#include "kernels/common/validate.h"
#include "xpuruntime/ops/topk_softmax.h"

namespace xpu::ops {
namespace {

constexpr const char* kOp = "topk_softmax";

// logits [..., E] with 1 <= k <= E <= kTopKSoftmaxMaxExperts.
Status check_logits(const TensorView& logits, int64_t k, RowLayout* rows) {
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "logits", logits, rows));
  const int64_t e = logits.shape[logits.ndim - 1];
  if (e > kTopKSoftmaxMaxExperts)
    return InvalidArgument(kOp, ": 'logits' ", shape_string(logits), " has ", e,
                           " experts (last dimension); at most ", kTopKSoftmaxMaxExperts,
                           " are supported");
  if (k < 1 || k > e)
    return InvalidArgument(kOp, ": 'k' (required) must be in [1, E] with E = ", e,
                           " (the last dimension of 'logits'), got ", k);
  return Status::Ok();
}

// A [..., k] tensor of `dtype` (logits' leading shape, then k) on logits' device, with
// data: an output is dense; an input may have a row stride (*stride).
Status check_per_choice(const char* name, const TensorView& v, DType dtype,
                        const TensorView& logits, int64_t k, int64_t* stride = nullptr) {
  if (!stride) XPU_RETURN_IF_ERROR(check::dense_output(kOp, name, v));
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, name, v, dtype));
  bool same = v.ndim == logits.ndim && v.shape[v.ndim - 1] == k;
  for (int i = 0; same && i < v.ndim - 1; ++i) same = v.shape[i] == logits.shape[i];
  if (!same) {
    TensorView want = logits;
    want.shape[want.ndim - 1] = k;
    return InvalidArgument(kOp, ": '", name, "' must have shape ", shape_string(want),
                           " (the leading shape of 'logits', then k), got ", shape_string(v));
  }
  XPU_RETURN_IF_ERROR(check::same_device(kOp, name, v, logits));
  if (v.numel() > 0 && v.data == nullptr)
    return InvalidArgument(kOp, ": '", name, "' has no data pointer");
  RowLayout rows;
  if (stride && !as_rows(v, &rows))
    return InvalidArgument(kOp, ": '", name, "' ", describe(v),
                           " must be contiguous in its last dimension with leading dimensions "
                           "that collapse to one row stride; make it contiguous first");
  if (stride) *stride = rows.row_stride;
  return Status::Ok();
}

}  // namespace

Status topk_softmax_forward(const TopKSoftmaxForwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  XPU_RETURN_IF_ERROR(check_logits(a.logits, a.k, &x));
  XPU_RETURN_IF_ERROR(check_per_choice("weights", a.weights, DType::kF32, a.logits, a.k));
  XPU_RETURN_IF_ERROR(check_per_choice("indices", a.indices, DType::kI32, a.logits, a.k));

  topk_softmax_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kForward, a.logits.device.kind, a.logits.dtype, ctx.policy}, &kernel));
  if (x.rows == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, a.k, x.row_stride}, ctx);
}

Status topk_softmax_backward(const TopKSoftmaxBackwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  topk_softmax_detail::BackwardProblem p{&a};
  XPU_RETURN_IF_ERROR(check_logits(a.logits, a.k, &x));
  XPU_RETURN_IF_ERROR(
      check_per_choice("dweights", a.dweights, DType::kF32, a.logits, a.k, &p.dweights_stride));
  XPU_RETURN_IF_ERROR(
      check_per_choice("weights", a.weights, DType::kF32, a.logits, a.k, &p.weights_stride));
  XPU_RETURN_IF_ERROR(
      check_per_choice("indices", a.indices, DType::kI32, a.logits, a.k, &p.indices_stride));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "dlogits", a.dlogits, "logits", a.logits));

  topk_softmax_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kBackward, a.logits.device.kind, a.logits.dtype, ctx.policy}, &kernel));
  if (x.rows == 0) return Status::Ok();
  p.rows = x.rows;
  p.e = x.cols;
  p.k = a.k;
  p.logits_stride = x.row_stride;
  return kernel(p, ctx);
}

// ---- the op spec -------------------------------------------------------------------------------
namespace {

// k has no default in OPS.md: the default 0 stands for "not given" (check_logits refuses it).
constexpr AttrSpec kAttrs[] = {
    {.name = "k", .onnx_name = "k", .type = AttrType::kInt, .default_number = 0, .min = 1,
     .max = double(kTopKSoftmaxMaxExperts)},
    {.name = "renormalize", .onnx_name = "renormalize", .type = AttrType::kBool,
     .default_number = 1},
};

constexpr InputSpec kForwardInputs[] = {{"logits", Role::kRows, DTypeRule::kFloat}};
constexpr OutputSpec kForwardOutputs[] = {
    {"weights", ShapeRule::kLeadingAndAttr, 0, OutputDType::kF32, OutputUse::kResult, -1, "k"},
    {"indices", ShapeRule::kLeadingAndAttr, 0, OutputDType::kI32, OutputUse::kResult, -1, "k"},
};

// The gradient of weights, the forward's input, then its outputs (op_spec.h's order).
constexpr InputSpec kBackwardInputs[] = {
    {"dweights", Role::kRows, DTypeRule::kF32},
    {"logits", Role::kRows, DTypeRule::kFloat},
    {"weights", Role::kRows, DTypeRule::kF32},
    {"indices", Role::kRows, DTypeRule::kI32},
};
constexpr OutputSpec kBackwardOutputs[] = {
    {"dlogits", ShapeRule::kLike, 1, OutputDType::kLikeRef},
};

int64_t attr_k(const AttrValues& attrs) { return static_cast<int64_t>(attrs[0].number); }
bool attr_renormalize(const AttrValues& attrs) { return attrs[1].number != 0; }

Status run_forward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                   const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return topk_softmax_forward({.logits = in[0], .weights = out[0], .indices = out[1],
                               .k = attr_k(attrs), .renormalize = attr_renormalize(attrs)},
                              ctx);
}

Status run_backward(const OpSpec&, std::span<const TensorView> in, std::span<const TensorView> out,
                    const TensorView&, const AttrValues& attrs, const ExecContext& ctx) {
  return topk_softmax_backward({.dweights = in[0], .logits = in[1], .weights = in[2],
                                .indices = in[3], .dlogits = out[0], .k = attr_k(attrs),
                                .renormalize = attr_renormalize(attrs)},
                               ctx);
}

constexpr OpSpec kForward{.op = kOp, .onnx_type = "TopKSoftmax", .direction = Direction::kForward,
    .inputs = kForwardInputs, .outputs = kForwardOutputs, .attrs = kAttrs, .run = run_forward};
constexpr OpSpec kBackward{.op = kOp, .onnx_type = "TopKSoftmax",
    .direction = Direction::kBackward, .inputs = kBackwardInputs, .outputs = kBackwardOutputs,
    .attrs = kAttrs, .run = run_backward};

}  // namespace

XPU_OP_SPECS(topk_softmax, kForward, kBackward, topk_softmax_detail)

}  // namespace xpu::ops
