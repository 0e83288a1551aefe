// rms_norm entry points: validate once, then dispatch through the registry.
#include "xpuruntime/ops/rms_norm.h"

#include <algorithm>

#include "kernels/common/norm_row_groups.h"
#include "kernels/common/validate.h"
#include "kernels/rms_norm/rms_norm_kernels.h"

namespace xpu::ops {
namespace {
constexpr const char* kOp = "rms_norm";
}  // namespace

int64_t rms_norm_backward_row_groups(int64_t rows, int64_t n) {
  return norm_backward_row_groups(rows, n);  // the workspace is groups * n floats
}

int64_t rms_norm_backward_workspace_bytes(int64_t rows, int64_t n) {
  // At most a chunk of rows' rstd; a multiple of 4 floats keeps the total 16-byte aligned.
  const int64_t rstd_floats = (std::min(rows, rms_norm_detail::kRstdChunkRows) + 3) / 4 * 4;
  return (rms_norm_detail::rms_norm_backward_rstd_offset(rms_norm_backward_row_groups(rows, n), n) +
          rstd_floats) *
         static_cast<int64_t>(sizeof(float));
}

int64_t rms_norm_detail::rms_norm_backward_rstd_offset(int64_t row_groups, int64_t n) {
  return (row_groups * n + 3) / 4 * 4;
}

Status rms_norm_forward(const RmsNormForwardArgs& a, const ExecContext& ctx) {
  RowLayout x, res;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "x", a.x, &x));
  XPU_RETURN_IF_ERROR(check::parameter(kOp, "weight", a.weight, a.x, x.cols));
  if (a.residual.present()) {
    XPU_RETURN_IF_ERROR(check::input_like(kOp, "residual", a.residual, "x", a.x, &res));
    XPU_RETURN_IF_ERROR(check::output_like(kOp, "h", a.h, "x", a.x));
  }
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "y", a.y, "x", a.x));
  if (!(a.eps >= 0.0f)) return InvalidArgument(kOp, ": 'eps' must be >= 0, got ", a.eps);

  rms_norm_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kForward, a.x.device.kind, a.x.dtype, ctx.policy}, &kernel));
  if (x.cols == 0 || x.rows == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, x.row_stride, a.residual.present() ? res.row_stride : 0}, ctx);
}

Status rms_norm_backward(const RmsNormBackwardArgs& a, const ExecContext& ctx) {
  RowLayout x, dy, dh;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "x", a.x, &x));
  XPU_RETURN_IF_ERROR(check::input_like(kOp, "dy", a.dy, "x", a.x, &dy));
  XPU_RETURN_IF_ERROR(check::parameter(kOp, "weight", a.weight, a.x, x.cols));
  if (!(a.eps >= 0.0f)) return InvalidArgument(kOp, ": 'eps' must be >= 0, got ", a.eps);
  if (a.dh.present()) XPU_RETURN_IF_ERROR(check::input_like(kOp, "dh", a.dh, "x", a.x, &dh));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "dx", a.dx, "x", a.x));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "dweight", a.dweight, "weight", a.weight));
  XPU_RETURN_IF_ERROR(
      check::workspace(kOp, a.workspace, rms_norm_backward_workspace_bytes(x.rows, x.cols), a.x));

  rms_norm_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kBackward, a.x.device.kind, a.x.dtype, ctx.policy}, &kernel));
  if (x.cols == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, dy.row_stride, x.row_stride,
                 a.dh.present() ? dh.row_stride : 0, rms_norm_backward_row_groups(x.rows, x.cols)},
                ctx);
}

}  // namespace xpu::ops
