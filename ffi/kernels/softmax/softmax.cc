// softmax entry points: validate once, then dispatch through the registry.
#include "kernels/common/validate.h"
#include "kernels/softmax/softmax_kernels.h"

namespace xpu::ops {
namespace {
constexpr const char* kOp = "softmax";
}  // namespace

Status softmax_forward(const SoftmaxForwardArgs& a, const ExecContext& ctx) {
  RowLayout x;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "x", a.x, &x));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "y", a.y, "x", a.x));
  if (!(a.scale == a.scale)) return InvalidArgument(kOp, ": 'scale' must not be NaN");

  softmax_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kForward, a.x.device.kind, a.x.dtype, ctx.policy}, &kernel));
  if (x.rows == 0 || x.cols == 0) return Status::Ok();
  return kernel({&a, x.rows, x.cols, x.row_stride}, ctx);
}

Status softmax_backward(const SoftmaxBackwardArgs& a, const ExecContext& ctx) {
  RowLayout y, dy;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "y", a.y, &y));
  XPU_RETURN_IF_ERROR(check::input_like(kOp, "dy", a.dy, "y", a.y, &dy));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, "dx", a.dx, "y", a.y));
  if (!(a.scale == a.scale)) return InvalidArgument(kOp, ": 'scale' must not be NaN");

  softmax_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, Direction::kBackward, a.y.device.kind, a.y.dtype, ctx.policy}, &kernel));
  if (y.rows == 0 || y.cols == 0) return Status::Ok();
  return kernel({&a, y.rows, y.cols, dy.row_stride, y.row_stride}, ctx);
}

}  // namespace xpu::ops
