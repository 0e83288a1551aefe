// XLA FFI handlers for cross_entropy. One target per direction; the same binding
// on the CPU and CUDA platforms, which differ only in where the stream comes from.
// The workspaces are extra results sized by the frontend with
// cross_entropy_{forward,backward}_workspace_bytes (traced programs allocate nothing).
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/cross_entropy.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xpu::xla_adapter {
namespace {

// Plain-data attributes shared by both directions.
struct Attrs {
  int64_t ignore_index;
  float label_smoothing;
  std::string_view reduction;
  std::string_view policy;
};

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer logits,                  // [..., V] f32/f16/bf16
                   ffi::AnyBuffer labels,                  // logits' leading shape, s32 or s64
                   ffi::Result<ffi::AnyBuffer> loss,       // f32: [] (mean / sum) or labels' shape
                   ffi::Result<ffi::AnyBuffer> lse,        // f32 labels' shape, for backward
                   ffi::Result<ffi::AnyBuffer> workspace,  // u8 [forward_workspace_bytes]
                   const Attrs& at) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("cross_entropy", at.policy, &ctx); err.failure()) return err;
  ops::CrossEntropyForwardArgs args;
  if (Status s = ops::cross_entropy_reduction_from_name(at.reduction, &args.reduction); !s.ok())
    return to_error(s);
  args.logits = view(logits, dev);
  args.labels = view(labels, dev);
  args.loss = view(loss, dev);
  args.lse = view(lse, dev);
  args.workspace = view(workspace, dev);
  args.ignore_index = at.ignore_index;
  args.label_smoothing = at.label_smoothing;
  return to_error(ops::cross_entropy_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dloss,                   // f32, loss' shape
                    ffi::AnyBuffer logits,                  // [..., V], forward input
                    ffi::AnyBuffer labels,                  // forward labels
                    ffi::AnyBuffer lse,                     // f32 from forward
                    ffi::Result<ffi::AnyBuffer> dlogits,    // logits' shape and dtype
                    ffi::Result<ffi::AnyBuffer> workspace,  // u8 [backward_workspace_bytes]
                    const Attrs& at) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("cross_entropy", at.policy, &ctx); err.failure()) return err;
  ops::CrossEntropyBackwardArgs args;
  if (Status s = ops::cross_entropy_reduction_from_name(at.reduction, &args.reduction); !s.ok())
    return to_error(s);
  args.dloss = view(dloss, dev);
  args.logits = view(logits, dev);
  args.labels = view(labels, dev);
  args.lse = view(lse, dev);
  args.dlogits = view(dlogits, dev);
  args.workspace = view(workspace, dev);
  args.ignore_index = at.ignore_index;
  args.label_smoothing = at.label_smoothing;
  return to_error(ops::cross_entropy_backward(args, ctx));
}

template <typename B>
auto with_attrs(B binding) {
  return std::move(binding)
      .template Attr<int64_t>("ignore_index")      // rows with this label are skipped
      .template Attr<float>("label_smoothing")     // ls in [0, 1]
      .template Attr<std::string_view>("reduction")  // "mean", "sum" or "none"
      .template Attr<std::string_view>("policy");
}

template <typename B>
auto forward_signature(B binding) {
  return with_attrs(std::move(binding)
                        .template Arg<ffi::AnyBuffer>()    // logits
                        .template Arg<ffi::AnyBuffer>()    // labels
                        .template Ret<ffi::AnyBuffer>()    // loss
                        .template Ret<ffi::AnyBuffer>()    // lse
                        .template Ret<ffi::AnyBuffer>());  // workspace
}

template <typename B>
auto backward_signature(B binding) {
  return with_attrs(std::move(binding)
                        .template Arg<ffi::AnyBuffer>()    // dloss
                        .template Arg<ffi::AnyBuffer>()    // logits
                        .template Arg<ffi::AnyBuffer>()    // labels
                        .template Arg<ffi::AnyBuffer>()    // lse
                        .template Ret<ffi::AnyBuffer>()    // dlogits
                        .template Ret<ffi::AnyBuffer>());  // workspace
}

using R = ffi::Result<ffi::AnyBuffer>;
using A = ffi::AnyBuffer;

ffi::Error forward_cpu(A logits, A labels, R loss, R lse, R ws, int64_t ii, float ls,
                       std::string_view red, std::string_view pol) {
  return forward(nullptr, {DeviceKind::kCPU, 0}, logits, labels, loss, lse, ws, {ii, ls, red, pol});
}
ffi::Error backward_cpu(A dloss, A logits, A labels, A lse, R dlogits, R ws, int64_t ii, float ls,
                        std::string_view red, std::string_view pol) {
  return backward(nullptr, {DeviceKind::kCPU, 0}, dloss, logits, labels, lse, dlogits, ws,
                  {ii, ls, red, pol});
}

#if XPURUNTIME_WITH_CUDA
ffi::Error forward_cuda(cudaStream_t st, int32_t ordinal, A logits, A labels, R loss, R lse, R ws,
                        int64_t ii, float ls, std::string_view red, std::string_view pol) {
  return forward(st, {DeviceKind::kCUDA, ordinal}, logits, labels, loss, lse, ws,
                 {ii, ls, red, pol});
}
ffi::Error backward_cuda(cudaStream_t st, int32_t ordinal, A dloss, A logits, A labels, A lse,
                         R dlogits, R ws, int64_t ii, float ls, std::string_view red,
                         std::string_view pol) {
  return backward(st, {DeviceKind::kCUDA, ordinal}, dloss, logits, labels, lse, dlogits, ws,
                  {ii, ls, red, pol});
}
#endif

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_cross_entropy_fwd_cpu, forward_cpu,
                              forward_signature(ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(xpuruntime_cross_entropy_bwd_cpu, backward_cpu,
                              backward_signature(ffi::Ffi::Bind()));
#if XPURUNTIME_WITH_CUDA
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    xpuruntime_cross_entropy_fwd_cuda, forward_cuda,
    forward_signature(
        ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()),
    {ffi::Traits::kCmdBufferCompatible});
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    xpuruntime_cross_entropy_bwd_cuda, backward_cuda,
    backward_signature(
        ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>()),
    {ffi::Traits::kCmdBufferCompatible});
#endif

void add_cross_entropy_targets(TargetList& out) {
  out.push_back({"xpuruntime_cross_entropy_fwd",
                 reinterpret_cast<void*>(xpuruntime_cross_entropy_fwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_cross_entropy_fwd_cuda)});
  out.push_back({"xpuruntime_cross_entropy_bwd",
                 reinterpret_cast<void*>(xpuruntime_cross_entropy_bwd_cpu),
                 XPU_CUDA_TARGET(xpuruntime_cross_entropy_bwd_cuda)});
}

}  // namespace xpu::xla_adapter
