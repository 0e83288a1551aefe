// XLA FFI handlers for softmax. One target per direction; the same binding on
// the CPU and CUDA platforms, which differ only in where the stream comes from.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/softmax.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

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

ffi::Error forward_cpu(ffi::AnyBuffer x, ffi::Result<ffi::AnyBuffer> y, float scale,
                       std::string_view policy) {
  return forward(nullptr, {DeviceKind::kCPU, 0}, x, y, scale, policy);
}
ffi::Error backward_cpu(ffi::AnyBuffer dy, ffi::AnyBuffer y, ffi::Result<ffi::AnyBuffer> dx,
                        float scale, std::string_view policy) {
  return backward(nullptr, {DeviceKind::kCPU, 0}, dy, y, dx, scale, policy);
}

#if XPURUNTIME_WITH_CUDA
ffi::Error forward_cuda(cudaStream_t s, int32_t ordinal, ffi::AnyBuffer x,
                        ffi::Result<ffi::AnyBuffer> y, float scale, std::string_view policy) {
  return forward(s, {DeviceKind::kCUDA, ordinal}, x, y, scale, policy);
}
ffi::Error backward_cuda(cudaStream_t s, int32_t ordinal, ffi::AnyBuffer dy, ffi::AnyBuffer y,
                         ffi::Result<ffi::AnyBuffer> dx, float scale, std::string_view policy) {
  return backward(s, {DeviceKind::kCUDA, ordinal}, dy, y, dx, scale, policy);
}
#endif

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_softmax_fwd_cpu, forward_cpu,
                              forward_signature(ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_softmax_bwd_cpu, backward_cpu,
                              backward_signature(ffi::Ffi::Bind()));
#if XPURUNTIME_WITH_CUDA
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    xpuruntime_softmax_fwd_cuda, forward_cuda,
    forward_signature(
        ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()),
    {ffi::Traits::kCmdBufferCompatible});
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    xpuruntime_softmax_bwd_cuda, backward_cuda,
    backward_signature(
        ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()),
    {ffi::Traits::kCmdBufferCompatible});
#endif

void add_softmax_targets(TargetList& out) {
  out.push_back({"xpuruntime_softmax_fwd", reinterpret_cast<void*>(xpuruntime_softmax_fwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_softmax_fwd_cuda)});
  out.push_back({"xpuruntime_softmax_bwd", reinterpret_cast<void*>(xpuruntime_softmax_bwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_softmax_bwd_cuda)});
}

}  // namespace xpu::xla_adapter
