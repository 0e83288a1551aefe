// XLA FFI handlers for cross_entropy. One target per direction; the same binding
// on the CPU and CUDA platforms, which differ only in where the stream comes from.
// The workspaces are extra results sized by the frontend with
// cross_entropy_{forward,backward}_workspace_bytes (traced programs allocate nothing).
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/cross_entropy.h"

namespace xpu::xla_adapter {
namespace {

// Plain-data attributes shared by both directions (see with_attrs).
struct Attrs {
  int64_t ignore_index;
  float label_smoothing;
  std::string_view reduction;
  std::string_view policy;
};

// The policy, the reduction and the scalar options of either direction.
template <typename Args>
ffi::Error prepare(const Attrs& at, ExecContext* ctx, Args* args) {
  if (auto err = parse_policy_attr("cross_entropy", at.policy, ctx); err.failure()) return err;
  if (Status s = ops::cross_entropy_reduction_from_name(at.reduction, &args->reduction); !s.ok())
    return to_error(s);
  args->ignore_index = at.ignore_index;
  args->label_smoothing = at.label_smoothing;
  return ffi::Error::Success();
}

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer logits,                  // [..., V] f32/f16/bf16
                   ffi::AnyBuffer labels,                  // logits' leading shape, s32 or s64
                   ffi::Result<ffi::AnyBuffer> loss,       // f32: [] (mean / sum) or labels' shape
                   ffi::Result<ffi::AnyBuffer> lse,        // f32 labels' shape, for backward
                   ffi::Result<ffi::AnyBuffer> workspace,  // u8 [forward_workspace_bytes]
                   int64_t ignore_index, float label_smoothing, std::string_view reduction,
                   std::string_view policy) {
  const Attrs at{ignore_index, label_smoothing, reduction, policy};
  ExecContext ctx{stream};
  ops::CrossEntropyForwardArgs args;
  if (auto err = prepare(at, &ctx, &args); err.failure()) return err;
  args.logits = view(logits, dev);
  args.labels = view(labels, dev);
  args.loss = view(loss, dev);
  args.lse = view(lse, dev);
  args.workspace = view(workspace, dev);
  return to_error(ops::cross_entropy_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dloss,                   // f32, loss' shape
                    ffi::AnyBuffer logits,                  // [..., V], forward input
                    ffi::AnyBuffer labels,                  // forward labels
                    ffi::AnyBuffer lse,                     // f32 from forward
                    ffi::Result<ffi::AnyBuffer> dlogits,    // logits' shape and dtype
                    ffi::Result<ffi::AnyBuffer> workspace,  // u8 [backward_workspace_bytes]
                    int64_t ignore_index, float label_smoothing, std::string_view reduction,
                    std::string_view policy) {
  const Attrs at{ignore_index, label_smoothing, reduction, policy};
  ExecContext ctx{stream};
  ops::CrossEntropyBackwardArgs args;
  if (auto err = prepare(at, &ctx, &args); err.failure()) return err;
  args.dloss = view(dloss, dev);
  args.logits = view(logits, dev);
  args.labels = view(labels, dev);
  args.lse = view(lse, dev);
  args.dlogits = view(dlogits, dev);
  args.workspace = view(workspace, dev);
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


}  // namespace

XPU_XLA_HANDLERS(xpuruntime_cross_entropy_fwd, forward, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_cross_entropy_bwd, backward, backward_signature);

void add_cross_entropy_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_cross_entropy_fwd", xpuruntime_cross_entropy_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_cross_entropy_bwd", xpuruntime_cross_entropy_bwd));
}

}  // namespace xpu::xla_adapter
