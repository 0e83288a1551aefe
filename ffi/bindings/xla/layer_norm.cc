// XLA FFI handlers for layer_norm. One target per direction; the same binding on
// the CPU and CUDA platforms, which differ only in where the stream comes from.
#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/ops/layer_norm.h"

namespace xpu::xla_adapter {
namespace {

ffi::Error forward(void* stream, Device dev,
                   ffi::AnyBuffer x,                  // [..., N]
                   ffi::AnyBuffer weight,             // [N], x's dtype
                   ffi::AnyBuffer bias,               // [N], x's dtype
                   ffi::Result<ffi::AnyBuffer> y,     // x's shape and dtype
                   ffi::Result<ffi::AnyBuffer> mean,  // [rows] f32, saved for backward
                   ffi::Result<ffi::AnyBuffer> rstd,  // [rows] f32, saved for backward
                   float eps, std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("layer_norm", policy, &ctx); err.failure()) return err;
  ops::LayerNormForwardArgs args;
  args.x = view(x, dev);
  args.weight = view(weight, dev);
  args.bias = view(bias, dev);
  args.y = view(y, dev);
  args.mean = view(mean, dev);
  args.rstd = view(rstd, dev);
  args.eps = eps;
  return to_error(ops::layer_norm_forward(args, ctx));
}

ffi::Error backward(void* stream, Device dev,
                    ffi::AnyBuffer dy,                      // [..., N]
                    ffi::AnyBuffer x,                       // forward input, [..., N]
                    ffi::AnyBuffer weight,                  // [N]
                    ffi::AnyBuffer mean,                    // [rows] f32 from forward
                    ffi::AnyBuffer rstd,                    // [rows] f32 from forward
                    ffi::Result<ffi::AnyBuffer> dx,         // x's shape
                    ffi::Result<ffi::AnyBuffer> dweight,    // [N], weight's dtype
                    ffi::Result<ffi::AnyBuffer> dbias,      // [N], weight's dtype
                    ffi::Result<ffi::AnyBuffer> workspace,  // u8 scratch, sized by the frontend
                    std::string_view policy) {
  ExecContext ctx{stream};
  if (auto err = parse_policy_attr("layer_norm", policy, &ctx); err.failure()) return err;
  ops::LayerNormBackwardArgs args;
  args.dy = view(dy, dev);
  args.x = view(x, dev);
  args.weight = view(weight, dev);
  args.mean = view(mean, dev);
  args.rstd = view(rstd, dev);
  args.dx = view(dx, dev);
  args.dweight = view(dweight, dev);
  args.dbias = view(dbias, dev);
  args.workspace = view(workspace, dev);
  return to_error(ops::layer_norm_backward(args, ctx));
}

// The argument list, shared by both platforms.
template <typename B>
auto forward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // x: [..., N] f32/f16/bf16
      .template Arg<ffi::AnyBuffer>()           // weight: [N], x's dtype
      .template Arg<ffi::AnyBuffer>()           // bias: [N], x's dtype
      .template Ret<ffi::AnyBuffer>()           // y: x's shape and dtype
      .template Ret<ffi::AnyBuffer>()           // mean: [rows] f32
      .template Ret<ffi::AnyBuffer>()           // rstd: [rows] f32, 1 / sqrt(var + eps)
      .template Attr<float>("eps")              // added to the variance (OPS.md default 1e-5)
      .template Attr<std::string_view>("policy");  // fast / deterministic / reference
}

template <typename B>
auto backward_signature(B binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()           // dy: [..., N], x's dtype
      .template Arg<ffi::AnyBuffer>()           // x: the forward input
      .template Arg<ffi::AnyBuffer>()           // weight: [N]
      .template Arg<ffi::AnyBuffer>()           // mean: [rows] f32 from forward
      .template Arg<ffi::AnyBuffer>()           // rstd: [rows] f32 from forward
      .template Ret<ffi::AnyBuffer>()           // dx: x's shape and dtype
      .template Ret<ffi::AnyBuffer>()           // dweight: [N], weight's dtype
      .template Ret<ffi::AnyBuffer>()           // dbias: [N], weight's dtype
      .template Ret<ffi::AnyBuffer>()           // workspace: u8 [layer_norm_backward_workspace_bytes]
      .template Attr<std::string_view>("policy");  // fast / deterministic / reference
}

}  // namespace

XPU_XLA_HANDLERS(xpuruntime_layer_norm_fwd, forward, forward_signature);
XPU_XLA_HANDLERS(xpuruntime_layer_norm_bwd, backward, backward_signature);

void add_layer_norm_targets(TargetList& out) {
  out.push_back(XPU_XLA_TARGET("xpuruntime_layer_norm_fwd", xpuruntime_layer_norm_fwd));
  out.push_back(XPU_XLA_TARGET("xpuruntime_layer_norm_bwd", xpuruntime_layer_norm_bwd));
}

}  // namespace xpu::xla_adapter
