// XLA FFI handlers for the gated-linear-unit ops (swiglu, geglu). One target per
// op and direction; the handlers are templates over the op (its name and entry
// points), the same binding on the CPU and CUDA platforms.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

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

template <typename Op>
ffi::Error forward_cpu(ffi::AnyBuffer gate, ffi::AnyBuffer up, ffi::Result<ffi::AnyBuffer> y,
                       std::string_view policy) {
  return forward<Op>(nullptr, {DeviceKind::kCPU, 0}, gate, up, y, policy);
}
template <typename Op>
ffi::Error backward_cpu(ffi::AnyBuffer dy, ffi::AnyBuffer gate, ffi::AnyBuffer up,
                        ffi::Result<ffi::AnyBuffer> dgate, ffi::Result<ffi::AnyBuffer> dup,
                        std::string_view policy) {
  return backward<Op>(nullptr, {DeviceKind::kCPU, 0}, dy, gate, up, dgate, dup, policy);
}

#if XPURUNTIME_WITH_CUDA
template <typename Op>
ffi::Error forward_cuda(cudaStream_t s, int32_t ordinal, ffi::AnyBuffer gate, ffi::AnyBuffer up,
                        ffi::Result<ffi::AnyBuffer> y, std::string_view policy) {
  return forward<Op>(s, {DeviceKind::kCUDA, ordinal}, gate, up, y, policy);
}
template <typename Op>
ffi::Error backward_cuda(cudaStream_t s, int32_t ordinal, ffi::AnyBuffer dy, ffi::AnyBuffer gate,
                         ffi::AnyBuffer up, ffi::Result<ffi::AnyBuffer> dgate,
                         ffi::Result<ffi::AnyBuffer> dup, std::string_view policy) {
  return backward<Op>(s, {DeviceKind::kCUDA, ordinal}, dy, gate, up, dgate, dup, policy);
}
#endif

}  // namespace

#define XPU_GLU_HANDLERS(name, Op)                                                              \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_##name##_fwd_cpu, forward_cpu<Op>,                   \
                                forward_signature(ffi::Ffi::Bind()));                           \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_##name##_bwd_cpu, backward_cpu<Op>,                  \
                                backward_signature(ffi::Ffi::Bind()));
XPU_GLU_HANDLERS(swiglu, Swiglu)
XPU_GLU_HANDLERS(geglu, Geglu)
#undef XPU_GLU_HANDLERS

#if XPURUNTIME_WITH_CUDA
#define XPU_GLU_CUDA_HANDLERS(name, Op)                                                         \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                \
      xpuruntime_##name##_fwd_cuda, forward_cuda<Op>,                                           \
      forward_signature(                                                                        \
          ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()), \
      {ffi::Traits::kCmdBufferCompatible});                                                     \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                \
      xpuruntime_##name##_bwd_cuda, backward_cuda<Op>,                                          \
      backward_signature(                                                                       \
          ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()), \
      {ffi::Traits::kCmdBufferCompatible});
XPU_GLU_CUDA_HANDLERS(swiglu, Swiglu)
XPU_GLU_CUDA_HANDLERS(geglu, Geglu)
#undef XPU_GLU_CUDA_HANDLERS
#endif

void add_glu_targets(TargetList& out) {
  out.push_back({"xpuruntime_swiglu_fwd", reinterpret_cast<void*>(xpuruntime_swiglu_fwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_swiglu_fwd_cuda)});
  out.push_back({"xpuruntime_swiglu_bwd", reinterpret_cast<void*>(xpuruntime_swiglu_bwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_swiglu_bwd_cuda)});
  out.push_back({"xpuruntime_geglu_fwd", reinterpret_cast<void*>(xpuruntime_geglu_fwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_geglu_fwd_cuda)});
  out.push_back({"xpuruntime_geglu_bwd", reinterpret_cast<void*>(xpuruntime_geglu_bwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_geglu_bwd_cuda)});
}

}  // namespace xpu::xla_adapter
