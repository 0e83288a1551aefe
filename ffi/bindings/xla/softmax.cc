// XLA FFI handlers for softmax. One target per direction; the same binding on
// the CPU and CUDA platforms, which differ only in where the stream comes from.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/softmax.h"

namespace xpu::xla_adapter {
namespace {

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer x,                 // [..., N]
                   ffi::Result<ffi::AnyBuffer> y,    // x's shape and dtype
                   float scale,                      // s = scale * x
                   std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("softmax", policy, &ctx); err.failure()) return err;
  ops::SoftmaxForwardArgs args;
  args.x = view(x, dev);
  args.y = view(y, dev);
  args.scale = scale;
  return to_error(ops::softmax_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dy,                // [..., N], gradient of y
                    ffi::AnyBuffer y,                 // [..., N], the forward output
                    ffi::Result<ffi::AnyBuffer> dx,   // y's shape and dtype
                    float scale,                      // the forward's scale
                    std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("softmax", policy, &ctx); err.failure()) return err;
  ops::SoftmaxBackwardArgs args;
  args.dy = view(dy, dev);
  args.y = view(y, dev);
  args.dx = view(dx, dev);
  args.scale = scale;
  return to_error(ops::softmax_backward(args, ctx));
}

// The argument list, shared by both platforms.
template <typename B>
auto forward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // x
      .template Ret<ffi::AnyBuffer>()           // y
      .template Attr<float>("scale")
      .template Attr<std::string_view>("policy");
}

template <typename B>
auto backward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // dy
      .template Arg<ffi::AnyBuffer>()           // y
      .template Ret<ffi::AnyBuffer>()           // dx
      .template Attr<float>("scale")
      .template Attr<std::string_view>("policy");
}

}  // namespace

XPU_XLA_HANDLERS(xpuruntime_softmax_fwd, forward, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_softmax_bwd, backward, backward_signature);

void add_softmax_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_softmax_fwd", xpuruntime_softmax_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_softmax_bwd", xpuruntime_softmax_bwd));
}

}  // namespace xpu::xla_adapter
