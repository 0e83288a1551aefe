// swiglu / geglu entry points: validate once (shared code, the op's own name in
// every message), then dispatch through the registry.
#include "kernels/common/validate.h"
#include "kernels/glu/glu_kernels.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

namespace xpu::ops {
namespace {

// An input of the op: a float rows view with gate's dtype, shape and device.
Status check_like_gate(const char* op, const char* name, const TensorView& v,
                       const TensorView& gate, RowLayout* rows) {
  XPU_RETURN_IF_ERROR(check::float_rows(op, name, v, rows));
  XPU_RETURN_IF_ERROR(check::dtype_is(op, name, v, gate.dtype));
  XPU_RETURN_IF_ERROR(check::same_shape(op, name, v, "gate", gate));
  return check::same_device(op, name, v, gate);
}

// An output of the op: dense, with gate's dtype, shape and device.
Status check_output(const char* op, const char* name, const TensorView& v, const TensorView& gate) {
  XPU_RETURN_IF_ERROR(check::dense_output(op, name, v));
  XPU_RETURN_IF_ERROR(check::same_shape(op, name, v, "gate", gate));
  XPU_RETURN_IF_ERROR(check::dtype_is(op, name, v, gate.dtype));
  return check::same_device(op, name, v, gate);
}

Status glu_forward(const char* op, const GluForwardArgs& a, const ExecContext& ctx) {
  RowLayout gate, up;
  XPU_RETURN_IF_ERROR(check::float_rows(op, "gate", a.gate, &gate));
  XPU_RETURN_IF_ERROR(check_like_gate(op, "up", a.up, a.gate, &up));
  XPU_RETURN_IF_ERROR(check_output(op, "y", a.y, a.gate));

  glu_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {op, Direction::kForward, a.gate.device.kind, a.gate.dtype, ctx.policy}, &kernel));
  if (gate.rows == 0 || gate.cols == 0) return Status::Ok();
  return kernel({&a, gate.rows, gate.cols, gate.row_stride, up.row_stride}, ctx);
}

Status glu_backward(const char* op, const GluBackwardArgs& a, const ExecContext& ctx) {
  RowLayout gate, up, dy;
  XPU_RETURN_IF_ERROR(check::float_rows(op, "gate", a.gate, &gate));
  XPU_RETURN_IF_ERROR(check_like_gate(op, "up", a.up, a.gate, &up));
  XPU_RETURN_IF_ERROR(check_like_gate(op, "dy", a.dy, a.gate, &dy));
  XPU_RETURN_IF_ERROR(check_output(op, "dgate", a.dgate, a.gate));
  XPU_RETURN_IF_ERROR(check_output(op, "dup", a.dup, a.gate));

  glu_detail::BackwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {op, Direction::kBackward, a.gate.device.kind, a.gate.dtype, ctx.policy}, &kernel));
  if (gate.rows == 0 || gate.cols == 0) return Status::Ok();
  return kernel({&a, gate.rows, gate.cols, dy.row_stride, gate.row_stride, up.row_stride}, ctx);
}

}  // namespace

Status swiglu_forward(const SwigluForwardArgs& a, const ExecContext& ctx) {
  return glu_forward("swiglu", a, ctx);
}
Status swiglu_backward(const SwigluBackwardArgs& a, const ExecContext& ctx) {
  return glu_backward("swiglu", a, ctx);
}
Status geglu_forward(const GegluForwardArgs& a, const ExecContext& ctx) {
  return glu_forward("geglu", a, ctx);
}
Status geglu_backward(const GegluBackwardArgs& a, const ExecContext& ctx) {
  return glu_backward("geglu", a, ctx);
}

}  // namespace xpu::ops
