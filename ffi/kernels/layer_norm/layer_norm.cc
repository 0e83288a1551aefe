// layer_norm entry points: validate once, then dispatch through the registry.
#include "xpuruntime/ops/layer_norm.h"

#include <algorithm>

#include "kernels/common/validate.h"
#include "kernels/layer_norm/layer_norm_kernels.h"

namespace xpu::ops {
namespace {

constexpr const char* kOp = "layer_norm";

// A [N] parameter (weight or bias): x's dtype, contiguous, on x's device.
Status check_param(const char* name, const TensorView& p, const TensorView& x, int64_t n) {
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, name, p, x.dtype));
  XPU_RETURN_IF_ERROR(check::shape_is(kOp, name, p, {n}));
  XPU_RETURN_IF_ERROR(check::same_device(kOp, name, p, x));
  if (p.strides[0] != 1 && n > 1) return InvalidArgument(kOp, ": '", name, "' must be contiguous");
  if (p.data == nullptr && n > 0) return InvalidArgument(kOp, ": '", name, "' has no data pointer");
  return Status::Ok();
}

// A per-row statistic (mean or rstd): f32, one dense element per row, on x's
// device; written by the forward (an output), read by the backward (an input).
Status check_stat(const char* name, const TensorView& s, const TensorView& x, int64_t rows, bool output) {
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, name, s, DType::kF32));
  if (s.numel() != rows)
    return InvalidArgument(kOp, ": '", name, "' must have ", rows, " elements, got ", s.numel());
  if (output) {
    XPU_RETURN_IF_ERROR(check::dense_output(kOp, name, s));
  } else if (!check::dense_output(kOp, name, s).ok()) {
    return InvalidArgument(kOp, ": input '", name, "' must be dense (one float32 per row of 'x', "
                           "as layer_norm(..., return_stats=True) returns it)");
  }
  XPU_RETURN_IF_ERROR(check::same_device(kOp, name, s, x));
  if (s.data == nullptr && rows > 0) return InvalidArgument(kOp, ": '", name, "' has no data pointer");
  return Status::Ok();
}

// A dense output of `ref`'s shape in `dt` on x's device.
Status check_out(const char* name, const TensorView& o, const char* ref_name,
                 const TensorView& ref, DType dt, const TensorView& x) {
  XPU_RETURN_IF_ERROR(check::dense_output(kOp, name, o));
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, name, o, dt));
  XPU_RETURN_IF_ERROR(check::same_shape(kOp, name, o, ref_name, ref));
  XPU_RETURN_IF_ERROR(check::same_device(kOp, name, o, x));
  if (o.data == nullptr && o.numel() > 0)
    return InvalidArgument(kOp, ": output '", name, "' has no data pointer");
  return Status::Ok();
}

}  // namespace

int64_t layer_norm_backward_row_groups(int64_t rows, int64_t n) {
  // Enough groups to fill an H100-class chip twice over, fewer when rows are few
  // or rows are long (the workspace is 2 * groups * n floats).
  const int64_t cap = n > 16384 ? 128 : 512;
  return std::max<int64_t>(1, std::min(rows, cap));
}

int64_t layer_norm_backward_workspace_bytes(int64_t rows, int64_t n) {
  return 2 * layer_norm_backward_row_groups(rows, n) * n * static_cast<int64_t>(sizeof(float));
}

Status layer_norm_forward(const LayerNormForwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "x", a.x, &x));
  XPU_RETURN_IF_ERROR(check_param("weight", a.weight, a.x, x.cols));
  XPU_RETURN_IF_ERROR(check_param("bias", a.bias, a.x, x.cols));
  XPU_RETURN_IF_ERROR(check_out("y", a.y, "x", a.x, a.x.dtype, a.x));
  if (a.mean.present()) XPU_RETURN_IF_ERROR(check_stat("mean", a.mean, a.x, x.rows, true));
  if (a.rstd.present()) XPU_RETURN_IF_ERROR(check_stat("rstd", a.rstd, a.x, x.rows, true));
  if (!(a.eps >= 0.0f)) return InvalidArgument(kOp, ": 'eps' must be >= 0, got ", a.eps);

  layer_norm_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kForward, a.x.device.kind, a.x.dtype, ctx.policy}, &kernel));
  if (x.rows == 0 || x.cols == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, x.row_stride}, ctx);
}

Status layer_norm_backward(const LayerNormBackwardArgs& a, const ExecContext& ctx) {
  RowLayout x, dy;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "x", a.x, &x));
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "dy", a.dy, &dy));
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, "dy", a.dy, a.x.dtype));
  XPU_RETURN_IF_ERROR(check::same_shape(kOp, "dy", a.dy, "x", a.x));
  XPU_RETURN_IF_ERROR(check::same_device(kOp, "dy", a.dy, a.x));
  XPU_RETURN_IF_ERROR(check_param("weight", a.weight, a.x, x.cols));
  XPU_RETURN_IF_ERROR(check_stat("mean", a.mean, a.x, x.rows, false));
  XPU_RETURN_IF_ERROR(check_stat("rstd", a.rstd, a.x, x.rows, false));
  XPU_RETURN_IF_ERROR(check_out("dx", a.dx, "x", a.x, a.x.dtype, a.x));
  XPU_RETURN_IF_ERROR(check_out("dweight", a.dweight, "weight", a.weight, a.weight.dtype, a.x));
  XPU_RETURN_IF_ERROR(check_out("dbias", a.dbias, "weight", a.weight, a.weight.dtype, a.x));
  XPU_RETURN_IF_ERROR(
      check::workspace(kOp, a.workspace, layer_norm_backward_workspace_bytes(x.rows, x.cols), a.x));

  layer_norm_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kBackward, a.x.device.kind, a.x.dtype, ctx.policy}, &kernel));
  if (x.cols == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, dy.row_stride, x.row_stride,
                 layer_norm_backward_row_groups(x.rows, x.cols)},
                ctx);
}

}  // namespace xpu::ops
