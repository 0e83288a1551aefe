// XLA FFI handlers for rms_norm. One target per direction; the same binding on
// the CPU and CUDA platforms, which differ only in where the stream comes from.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/rms_norm.h"

namespace xpu::xla_adapter {
namespace {

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer x,                     // [..., N]
                   ffi::AnyBuffer weight,                // [N]
                   ffi::Result<ffi::AnyBuffer> y,        // x's shape and dtype
                   ffi::Result<ffi::AnyBuffer> rstd,     // [rows] f32, saved for backward
                   std::optional<ffi::AnyBuffer> residual,  // x's shape, or absent
                   std::optional<ffi::Result<ffi::AnyBuffer>> h,  // x + residual, when given
                   float eps, std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("rms_norm", policy, &ctx); err.failure()) return err;
  ops::RmsNormForwardArgs args;
  args.x = view(x, dev);
  args.weight = view(weight, dev);
  args.residual = view(residual, dev);
  args.y = view(y, dev);
  args.rstd = view(rstd, dev);
  if (h) args.h = view(*h, dev);
  args.eps = eps;
  return to_error(ops::rms_norm_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dy,                  // [..., N]
                    ffi::AnyBuffer x,                   // forward input (h with a residual)
                    ffi::AnyBuffer weight,              // [N]
                    ffi::AnyBuffer rstd,                // [rows] f32 from forward
                    ffi::Result<ffi::AnyBuffer> dx,     // x's shape
                    ffi::Result<ffi::AnyBuffer> dweight,   // [N]
                    ffi::Result<ffi::AnyBuffer> workspace,  // u8 scratch, sized by the frontend
                    std::optional<ffi::AnyBuffer> dh,   // gradient into h, when a residual was used
                    std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("rms_norm", policy, &ctx); err.failure()) return err;
  ops::RmsNormBackwardArgs args;
  args.dy = view(dy, dev);
  args.x = view(x, dev);
  args.weight = view(weight, dev);
  args.rstd = view(rstd, dev);
  args.dh = view(dh, dev);
  args.dx = view(dx, dev);
  args.dweight = view(dweight, dev);
  args.workspace = view(workspace, dev);
  return to_error(ops::rms_norm_backward(args, ctx));
}

// The argument list, shared by both platforms.
template <typename B>
auto forward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // x
      .template Arg<ffi::AnyBuffer>()           // weight
      .template Ret<ffi::AnyBuffer>()           // y
      .template Ret<ffi::AnyBuffer>()           // rstd
      .template OptionalArg<ffi::AnyBuffer>()   // residual
      .template OptionalRet<ffi::AnyBuffer>()   // h
      .template Attr<float>("eps")
      .template Attr<std::string_view>("policy");
}

template <typename B>
auto backward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // dy
      .template Arg<ffi::AnyBuffer>()           // x
      .template Arg<ffi::AnyBuffer>()           // weight
      .template Arg<ffi::AnyBuffer>()           // rstd
      .template Ret<ffi::AnyBuffer>()           // dx
      .template Ret<ffi::AnyBuffer>()           // dweight
      .template Ret<ffi::AnyBuffer>()           // workspace
      .template OptionalArg<ffi::AnyBuffer>()   // dh
      .template Attr<std::string_view>("policy");
}

}  // namespace

XPU_XLA_HANDLERS(xpuruntime_rms_norm_fwd, forward, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_rms_norm_bwd, backward, backward_signature);

void add_rms_norm_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_rms_norm_fwd", xpuruntime_rms_norm_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_rms_norm_bwd", xpuruntime_rms_norm_bwd));
}

}  // namespace xpu::xla_adapter
