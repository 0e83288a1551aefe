// topk_softmax: mixture-of-experts routing, the one C++ entry point per direction
// (see shared OPS.md).
//   p = softmax(logits) over the last axis (E experts), f32 arithmetic
//   indices[..., j] (int32): the k largest logits in descending order, ties to the lower
//     index; NaN ranks above +inf (as torch.topk), so a row with NaN picks its NaNs first
//   weights[..., j] (f32) = p[indices[j]], divided by sum_j p[indices[j]] when renormalize
//     (the same as a softmax over the chosen logits). Rows with NaN or +inf, and rows
//     of only -inf, get NaN weights, as the formula gives.
//   backward, g = dweights, dot = sum_j g_j w_j (w: the forward's weights):
//     dlogits[indices[j]] = w_j (g_j - dot)
//     dlogits[v] elsewhere = 0 with renormalize, else -p_v dot, where p_v is recomputed
//       from the forward's outputs: p_v = w_0 exp(logits[v] - logits[indices[0]])
//       (indices[0] is the argmax and w_0 = 1 / sum exp(logits - max)).
//   Selection is exact and every sum runs in a fixed order (no atomics): all three
//   policies are deterministic.
// The backward's indices must be a forward's: in [0, E) and distinct within a row. The
// CPU refuses others (InvalidArgument naming the row); CUDA never writes out of bounds
// and gives that row an all-NaN gradient.
#pragma once

#include <cstdint>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/registry.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

// Largest E the kernels take (a CUDA row of keys fits one block's shared memory).
inline constexpr int64_t kTopKSoftmaxMaxExperts = 4096;

struct TopKSoftmaxForwardArgs {
  TensorView logits;   // [..., E] f32/f16/bf16, 1 <= E <= 4096; rows may be strided
  TensorView weights;  // out f32 [..., k], dense
  TensorView indices;  // out int32 [..., k], dense
  int64_t k = 1;       // 1 <= k <= E
  bool renormalize = true;
};

struct TopKSoftmaxBackwardArgs {
  TensorView dweights;  // f32 [..., k]: gradient of weights
  TensorView logits;    // [..., E], the forward input (read only without renormalize)
  TensorView weights;   // f32 [..., k], the forward's
  TensorView indices;   // int32 [..., k], the forward's
  TensorView dlogits;   // out, logits' shape and dtype (dense)
  int64_t k = 1;        // the forward's
  bool renormalize = true;  // the forward's
};

Status topk_softmax_forward(const TopKSoftmaxForwardArgs& args, const ExecContext& ctx);
Status topk_softmax_backward(const TopKSoftmaxBackwardArgs& args, const ExecContext& ctx);

// Internal to the kernels (ffi/kernels/topk_softmax/): the validated problem each
// kernel receives and the signatures the registry stores. Every [..., k] tensor and
// logits carry their own row stride; weights, indices and dlogits are dense.
namespace topk_softmax_detail {

struct ForwardProblem {
  const TopKSoftmaxForwardArgs* args;
  int64_t rows, e, k;
  int64_t logits_stride;
};

struct BackwardProblem {
  const TopKSoftmaxBackwardArgs* args;
  int64_t rows, e, k;
  int64_t dweights_stride, logits_stride, indices_stride, weights_stride;
};

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace topk_softmax_detail
}  // namespace xpu::ops
