// swiglu / geglu entry points: validate once (shared code, the op's own name in
// every message), then dispatch through the registry.
#include "kernels/common/validate.h"
#include "kernels/glu/glu_kernels.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

namespace xpu::ops {
namespace {

Status glu_forward(const char* op, const GluForwardArgs& a, const ExecContext& ctx) {
  RowLayout gate, up;
  XPU_RETURN_IF_ERROR(check::float_rows(op, "gate", a.gate, &gate));
  XPU_RETURN_IF_ERROR(check::input_like(op, "up", a.up, "gate", a.gate, &up));
  XPU_RETURN_IF_ERROR(check::output_like(op, "y", a.y, "gate", a.gate));

  glu_detail::ForwardKernel* kernel = nullptr;
  XPU_RETURN_IF_ERROR(Registry::global().find_typed(
      {op, Direction::kForward, a.gate.device.kind, a.gate.dtype, ctx.policy}, &kernel));
  if (gate.rows == 0 || gate.cols == 0) return Status::Ok();
  return kernel({&a, gate.rows, gate.cols, gate.row_stride, up.row_stride}, ctx);
}

Status glu_backward(const char* op, const GluBackwardArgs& a, const ExecContext& ctx) {
  RowLayout gate, up, dy;
  XPU_RETURN_IF_ERROR(check::float_rows(op, "gate", a.gate, &gate));
  XPU_RETURN_IF_ERROR(check::input_like(op, "up", a.up, "gate", a.gate, &up));
  XPU_RETURN_IF_ERROR(check::input_like(op, "dy", a.dy, "gate", a.gate, &dy));
  XPU_RETURN_IF_ERROR(check::output_like(op, "dgate", a.dgate, "gate", a.gate));
  XPU_RETURN_IF_ERROR(check::output_like(op, "dup", a.dup, "gate", a.gate));

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
