// XLA FFI handlers for rope. One target per direction; the same binding on the
// CPU and CUDA platforms, which differ only in where the stream comes from.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/rope.h"

namespace xpu::xla_adapter {
namespace {

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer x,               // [B, S, H, D], D even
                   ffi::AnyBuffer cos,             // [S, D/2], f32 or x's dtype
                   ffi::AnyBuffer sin,             // [S, D/2], cos's dtype
                   ffi::Result<ffi::AnyBuffer> y,  // x's shape and dtype
                   bool interleaved,               // false: rotate-half; true: GPT-J pairs
                   std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("rope", policy, &ctx); err.failure()) return err;
  ops::RopeForwardArgs args;
  args.x = view(x, dev);
  args.cos = view(cos, dev);
  args.sin = view(sin, dev);
  args.y = view(y, dev);
  args.interleaved = interleaved;
  return to_error(ops::rope_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dy,               // [B, S, H, D], gradient of y
                    ffi::AnyBuffer cos,              // [S, D/2], the forward's cos
                    ffi::AnyBuffer sin,              // [S, D/2], the forward's sin
                    ffi::Result<ffi::AnyBuffer> dx,  // dy's shape and dtype
                    bool interleaved,                // the forward's layout
                    std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("rope", policy, &ctx); err.failure()) return err;
  ops::RopeBackwardArgs args;
  args.dy = view(dy, dev);
  args.cos = view(cos, dev);
  args.sin = view(sin, dev);
  args.dx = view(dx, dev);
  args.interleaved = interleaved;
  return to_error(ops::rope_backward(args, ctx));
}

// The argument list, shared by both platforms and both directions.
template <typename B>
auto signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // x (forward) or dy (backward)
      .template Arg<ffi::AnyBuffer>()           // cos
      .template Arg<ffi::AnyBuffer>()           // sin
      .template Ret<ffi::AnyBuffer>()           // y (forward) or dx (backward)
      .template Attr<bool>("interleaved")
      .template Attr<std::string_view>("policy");
}

}  // namespace

XPU_XLA_HANDLERS(xpuruntime_rope_fwd, forward, signature);
XPU_XLA_HANDLERS(xpuruntime_rope_bwd, backward, signature);

void add_rope_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_rope_fwd", xpuruntime_rope_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_rope_bwd", xpuruntime_rope_bwd));
}

}  // namespace xpu::xla_adapter
