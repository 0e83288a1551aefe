// rope entry points: validate once, then dispatch through the registry. Forward
// and backward share one kernel (backward = rotation with sin negated).
#include "kernels/common/validate.h"
#include "kernels/rope/rope_kernels.h"

namespace xpu::ops {
namespace {
constexpr const char* kOp = "rope";

// Checks the shared arguments of both directions and runs the kernel.
Status run(const char* in_name, const TensorView& in, const TensorView& cos,
           const TensorView& sin, const char* out_name, const TensorView& out, bool interleaved,
           bool backward, const ExecContext& ctx) {
  RowLayout rows, cr, sr;
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, in_name, in, &rows));
  if (in.ndim != 4)
    return InvalidArgument(kOp, ": '", in_name, "' must be 4-d [B, S, H, D], got shape ",
                           shape_string(in));
  const int64_t seq = in.shape[1], heads = in.shape[2], d = in.shape[3];
  if (d % 2 != 0)
    return InvalidArgument(kOp, ": the head dimension D (last dim of '", in_name,
                           "') must be even, got ", d);
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "cos", cos, &cr));
  XPU_RETURN_IF_ERROR(check::float_rows(kOp, "sin", sin, &sr));
  if (cos.dtype != DType::kF32 && cos.dtype != in.dtype) {
    if (in.dtype == DType::kF32)
      return InvalidArgument(kOp, ": 'cos' must be float32 (the dtype of '", in_name, "'), got ",
                             dtype_name(cos.dtype));
    return InvalidArgument(kOp, ": 'cos' must be float32 or ", dtype_name(in.dtype), " (the dtype of '",
                           in_name, "'), got ", dtype_name(cos.dtype));
  }
  XPU_RETURN_IF_ERROR(check::dtype_is(kOp, "sin", sin, cos.dtype));
  XPU_RETURN_IF_ERROR(check::shape_is(kOp, "cos", cos, {seq, d / 2}));
  XPU_RETURN_IF_ERROR(check::shape_is(kOp, "sin", sin, {seq, d / 2}));
  XPU_RETURN_IF_ERROR(check::same_device(kOp, "cos", cos, in));
  XPU_RETURN_IF_ERROR(check::same_device(kOp, "sin", sin, in));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, out_name, out, in_name, in));

  rope_detail::Kernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, backward ? Direction::kBackward : Direction::kForward, in.device.kind, in.dtype,
       ctx.policy},
      &kernel));
  if (rows.rows == 0 || d == 0) return Status::Ok();
  rope_detail::Problem p{in.data,    out.data,  cos.data,        sin.data,       cos.dtype,
                         rows.rows,  seq,       heads,           d,              rows.row_stride,
                         cr.row_stride, sr.row_stride, interleaved, backward};
  return kernel(p, ctx);
}

}  // namespace

Status rope_forward(const RopeForwardArgs& a, const ExecContext& ctx) {
  return run("x", a.x, a.cos, a.sin, "y", a.y, a.interleaved, false, ctx);
}

Status rope_backward(const RopeBackwardArgs& a, const ExecContext& ctx) {
  return run("dy", a.dy, a.cos, a.sin, "dx", a.dx, a.interleaved, true, ctx);
}

}  // namespace xpu::ops
