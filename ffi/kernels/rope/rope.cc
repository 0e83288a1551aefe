// rope entry points: validate once, then dispatch through the registry. Forward
// and backward share one kernel (backward = rotation with sin negated).
#include "kernels/common/validate.h"
#include "kernels/rope/rope_kernels.h"

namespace xpu::ops {
namespace {
constexpr const char* kOp = "rope";

// x / dy: 4-d [B, S, H, D], D contiguous; the B, S and H axes may have any strides
// (Hugging Face passes q.transpose(1, 2) of a [B, H, S, D] tensor), read as they are.
Status check_input(const char* name, const TensorView& in) {
  if (!in.present()) return InvalidArgument(kOp, ": argument '", name, "' is required");
  if (!is_op_float(in.dtype))
    return InvalidArgument(kOp, ": '", name, "' must be float32, float16 or bfloat16, got ",
                           dtype_name(in.dtype));
  if (in.ndim != 4)
    return InvalidArgument(kOp, ": '", name, "' must be 4-d [B, S, H, D], got shape ",
                           shape_string(in));
  if (in.data == nullptr && in.numel() > 0)
    return InvalidArgument(kOp, ": '", name, "' has no data pointer");
  if (in.shape[3] % 2 != 0)
    return InvalidArgument(kOp, ": the head dimension D (last dim of '", name,
                           "') must be even, got ", in.shape[3]);
  if (in.numel() > 0 && in.shape[3] > 1 && in.strides[3] != 1)
    return InvalidArgument(kOp, ": '", name, "' ", describe(in),
                           " must be contiguous in its last dimension (D); make it contiguous first");
  return Status::Ok();
}

// cos / sin: [S, D/2], D/2 contiguous; any stride over S (0 for a table expanded
// from one position). `cos_dtype`: the dtype sin must have (kInvalid for cos itself,
// which is float32 or in's dtype).
Status check_table(const char* name, const TensorView& t, DType cos_dtype, const TensorView& in,
                   const char* in_name, int64_t seq, int64_t half) {
  if (!t.present()) return InvalidArgument(kOp, ": argument '", name, "' is required");
  XPU_RETURN_IF_ERROR(check::shape_is(kOp, name, t, {seq, half}));
  if (cos_dtype != DType::kInvalid) XPU_RETURN_IF_ERROR(check::dtype_is(kOp, name, t, cos_dtype));
  else if (t.dtype != DType::kF32 && t.dtype != in.dtype)
    return in.dtype == DType::kF32
               ? InvalidArgument(kOp, ": '", name, "' must be float32 (the dtype of '", in_name,
                                 "'), got ", dtype_name(t.dtype))
               : InvalidArgument(kOp, ": '", name, "' must be float32 or ", dtype_name(in.dtype),
                                 " (the dtype of '", in_name, "'), got ", dtype_name(t.dtype));
  if (t.numel() > 0 && t.data == nullptr)
    return InvalidArgument(kOp, ": '", name, "' has no data pointer");
  if (t.numel() > 0 && half > 1 && t.strides[1] != 1)
    return InvalidArgument(kOp, ": '", name, "' ", describe(t),
                           " must be contiguous in its last dimension; make it contiguous first");
  return check::same_device(kOp, name, t, in);
}

// Checks the shared arguments of both directions and runs the kernel.
Status run(const char* in_name, const TensorView& in, const TensorView& cos,
           const TensorView& sin, const char* out_name, const TensorView& out, bool interleaved,
           bool backward, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(check_input(in_name, in));
  const int64_t seq = in.shape[1], heads = in.shape[2], d = in.shape[3];
  XPU_RETURN_IF_ERROR(check_table("cos", cos, DType::kInvalid, in, in_name, seq, d / 2));
  XPU_RETURN_IF_ERROR(check_table("sin", sin, cos.dtype, in, in_name, seq, d / 2));
  XPU_RETURN_IF_ERROR(check::output_like(kOp, out_name, out, in_name, in));

  rope_detail::Kernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {kOp, backward ? Direction::kBackward : Direction::kForward, in.device.kind, in.dtype,
       ctx.policy},
      &kernel));
  const int64_t rows = in.shape[0] * seq * heads;
  if (rows == 0 || d == 0) return Status::Ok();
  // The v1 row indexing where B, S and H collapse to one row stride (every dense
  // layout); else each of the three strides is applied.
  RowLayout layout;
  const bool in_rows = as_rows(in, &layout);
  rope_detail::Problem p{in.data, out.data, cos.data, sin.data, cos.dtype, rows, seq, heads, d,
                         in_rows ? layout.row_stride : 0,
                         {in.strides[0], in.strides[1], in.strides[2]},
                         in_rows, cos.strides[0], sin.strides[0], interleaved, backward};
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
