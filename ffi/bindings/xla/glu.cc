// XLA FFI handlers for the gated-linear-unit ops (swiglu, geglu). One target per
// op and direction; the handlers are templates over the op (its name and entry
// points), the same binding on the CPU and CUDA platforms.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"


namespace xpu::xla_adapter {
namespace {

struct Swiglu {
  static constexpr const char* kOp = "swiglu";
  static Status fwd(const ops::GluForwardArgs& a, const ExecContext& c) { return ops::swiglu_forward(a, c); }
  static Status bwd(const ops::GluBackwardArgs& a, const ExecContext& c) { return ops::swiglu_backward(a, c); }
};
struct Geglu {
  static constexpr const char* kOp = "geglu";
  static Status fwd(const ops::GluForwardArgs& a, const ExecContext& c) { return ops::geglu_forward(a, c); }
  static Status bwd(const ops::GluBackwardArgs& a, const ExecContext& c) { return ops::geglu_backward(a, c); }
};

template <typename Op>
ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer gate,              // [..., N]
                   ffi::AnyBuffer up,                // gate's shape and dtype
                   ffi::Result<ffi::AnyBuffer> y,    // gate's shape and dtype
                   std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr(Op::kOp, policy, &ctx); err.failure()) return err;
  ops::GluForwardArgs args;
  args.gate = view(gate, dev);
  args.up = view(up, dev);
  args.y = view(y, dev);
  return to_error(Op::fwd(args, ctx));
}

template <typename Op>
ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dy,                  // gate's shape, gradient of y
                    ffi::AnyBuffer gate,                // [..., N], forward input
                    ffi::AnyBuffer up,                  // gate's shape, forward input
                    ffi::Result<ffi::AnyBuffer> dgate,  // gate's shape and dtype
                    ffi::Result<ffi::AnyBuffer> dup,    // gate's shape and dtype
                    std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr(Op::kOp, policy, &ctx); err.failure()) return err;
  ops::GluBackwardArgs args;
  args.dy = view(dy, dev);
  args.gate = view(gate, dev);
  args.up = view(up, dev);
  args.dgate = view(dgate, dev);
  args.dup = view(dup, dev);
  return to_error(Op::bwd(args, ctx));
}

// The argument lists, shared by both platforms and both ops.
template <typename B>
auto forward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // gate
      .template Arg<ffi::AnyBuffer>()           // up
      .template Ret<ffi::AnyBuffer>()           // y
      .template Attr<std::string_view>("policy");
}

template <typename B>
auto backward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // dy
      .template Arg<ffi::AnyBuffer>()           // gate
      .template Arg<ffi::AnyBuffer>()           // up
      .template Ret<ffi::AnyBuffer>()           // dgate
      .template Ret<ffi::AnyBuffer>()           // dup
      .template Attr<std::string_view>("policy");
}

}  // namespace

XPU_XLA_HANDLERS(xpuruntime_swiglu_fwd, forward<Swiglu>, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_swiglu_bwd, backward<Swiglu>, backward_signature);
XPU_XLA_HANDLERS(xpuruntime_geglu_fwd, forward<Geglu>, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_geglu_bwd, backward<Geglu>, backward_signature);

void add_glu_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_swiglu_fwd", xpuruntime_swiglu_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_swiglu_bwd", xpuruntime_swiglu_bwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_geglu_fwd", xpuruntime_geglu_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_geglu_bwd", xpuruntime_geglu_bwd));
}

}  // namespace xpu::xla_adapter
