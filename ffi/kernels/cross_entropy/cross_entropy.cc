// cross_entropy entry points: validate once, then dispatch through the registry.
#include "kernels/common/validate.h"
#include "kernels/cross_entropy/cross_entropy_kernels.h"

namespace xpu::ops {
namespace {
constexpr const char* kOp = "cross_entropy";

// Dense row-major (labels, lse and dloss are read as flat arrays).
bool is_dense(const TensorView& v) {
  int64_t expect = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    if (v.shape[i] != 1 && v.strides[i] != expect) return false;
    expect *= v.shape[i];
  }
  return true;
}

// logits and labels, shared by both directions: fills rows / v and the label width.
Status check_logits_labels(const TensorView& logits, const TensorView& labels, RowLayout* rows,
                           bool* labels64) {
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "logits", logits, rows));
  if (rows->rows > 0 && rows->cols == 0)
    return InvalidArgument(kOp, ": 'logits' ", shape_string(logits),
                           " must have at least one class (last dimension)");
  if (!labels.present()) return InvalidArgument(kOp, ": argument 'labels' is required");
  if (labels.dtype != DType::kI32 && labels.dtype != DType::kI64)
    return InvalidArgument(kOp, ": 'labels' must be int32 or int64, got ",
                           dtype_name(labels.dtype));
  bool same = labels.ndim == logits.ndim - 1;
  for (int i = 0; same && i < labels.ndim; ++i) same = labels.shape[i] == logits.shape[i];
  if (!same)
    return InvalidArgument(kOp, ": 'labels' must have the leading shape of 'logits' ",
                           shape_string(logits), ", got ", shape_string(labels));
  if (labels.numel() > 0 && (labels.data == nullptr || !is_dense(labels)))
    return InvalidArgument(kOp, ": 'labels' must be contiguous");
  XPU_RETURN_IF_ERROR(check::same_device(kOp, "labels", labels, logits));
  *labels64 = labels.dtype == DType::kI64;
  return Status::Ok();
}

// loss (or dloss): one element for mean / sum, labels' shape for none.
Status check_loss(const char* name, const TensorView& v, CrossEntropyReduction r,
                  const TensorView& labels, const TensorView& logits) {
  if (!v.present()) return InvalidArgument(kOp, ": argument '", name, "' is required");
  if (r == CrossEntropyReduction::kNone)
    XPU_RETURN_IF_ERROR(check::same_shape(kOp, name, v, "labels", labels));
  return check::flat_f32(kOp, name, v, r == CrossEntropyReduction::kNone ? labels.numel() : 1,
                         logits);
}

Status check_smoothing(float ls) {
  if (!(ls >= 0.0f && ls <= 1.0f))
    return InvalidArgument(kOp, ": 'label_smoothing' must be in [0, 1], got ", ls);
  return Status::Ok();
}

}  // namespace

Status cross_entropy_reduction_from_name(std::string_view name, CrossEntropyReduction* out) {
  if (name == "mean") *out = CrossEntropyReduction::kMean;
  else if (name == "sum") *out = CrossEntropyReduction::kSum;
  else if (name == "none") *out = CrossEntropyReduction::kNone;
  else
    return InvalidArgument(kOp, ": unknown reduction '", name, "'; expected mean, sum or none");
  return Status::Ok();
}

int64_t cross_entropy_forward_workspace_bytes(int64_t rows, CrossEntropyReduction reduction) {
  if (reduction == CrossEntropyReduction::kNone) return 0;
  return rows * static_cast<int64_t>(sizeof(float));
}

int64_t cross_entropy_backward_workspace_bytes(int64_t rows, CrossEntropyReduction reduction) {
  return reduction == CrossEntropyReduction::kMean ? static_cast<int64_t>(sizeof(float)) : 0;
}

Status cross_entropy_forward(const CrossEntropyForwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  bool labels64 = false;
  XPU_RETURN_IF_ERROR(check_logits_labels(a.logits, a.labels, &x, &labels64));
  XPU_RETURN_IF_ERROR(check_loss("loss", a.loss, a.reduction, a.labels, a.logits));
  if (a.lse.present()) XPU_RETURN_IF_ERROR(check::flat_f32(kOp, "lse", a.lse, x.rows, a.logits));
  XPU_RETURN_IF_ERROR(check_smoothing(a.label_smoothing));
  XPU_RETURN_IF_ERROR(check::workspace(
      kOp, a.workspace, cross_entropy_forward_workspace_bytes(x.rows, a.reduction), a.logits));

  cross_entropy_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kForward, a.logits.device.kind, a.logits.dtype, ctx.policy}, &kernel));
  // Zero rows still write the reduced loss (0 for sum, NaN for mean).
  if (x.rows == 0 && a.reduction == CrossEntropyReduction::kNone) return Status::Ok();
  return kernel({&a, x.rows, x.cols, x.row_stride, labels64}, ctx);
}

Status cross_entropy_backward(const CrossEntropyBackwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  bool labels64 = false;
  XPU_RETURN_IF_ERROR(check_logits_labels(a.logits, a.labels, &x, &labels64));
  XPU_RETURN_IF_ERROR(check_loss("dloss", a.dloss, a.reduction, a.labels, a.logits));
  XPU_RETURN_IF_ERROR(check::flat_f32(kOp, "lse", a.lse, x.rows, a.logits));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "dlogits", a.dlogits, "logits", a.logits));
  XPU_RETURN_IF_ERROR(check_smoothing(a.label_smoothing));
  XPU_RETURN_IF_ERROR(check::workspace(
      kOp, a.workspace, cross_entropy_backward_workspace_bytes(x.rows, a.reduction), a.logits));

  cross_entropy_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kBackward, a.logits.device.kind, a.logits.dtype, ctx.policy}, &kernel));
  if (x.rows == 0 || x.cols == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, x.row_stride, labels64}, ctx);
}

}  // namespace xpu::ops
