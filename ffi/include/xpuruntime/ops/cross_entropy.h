// cross_entropy: the one C++ entry point per direction (see shared OPS.md).
//   logits [T, V] (more generally [..., V]: leading dims are the T rows), labels with
//   logits' leading shape, int32 or int64.
//   lse_t = log(sum_v exp(logits[t, v]))
//   l_t   = lse_t - (1 - ls) * logits[t, label_t] - ls * mean_v(logits[t, v])
//   Rows whose label == ignore_index give l_t = 0 and do not count.
//   reduction: mean (sum of l_t / counted rows; NaN when no row counts, like torch),
//              sum, or none (l_t per row).
//   backward: dlogits[t, v] = g_t * (softmax(t, v) - (1 - ls) * [v == label_t] - ls / V),
//     softmax recomputed from logits and the forward's lse (no f32 [T, V] buffer);
//     g_t = dloss (sum), dloss / count (mean), dloss[t] (none); 0 for ignored rows.
//   Arithmetic in f32; every reduction runs in a fixed order (no atomics), so all
//   policies are deterministic.
//
// Out-of-range labels (not ignore_index and outside [0, V)):
//   CPU:  InvalidArgument naming the first such row; nothing is computed.
//   CUDA: the labels live on the device and are never read out of bounds: that row's
//         loss (and so a mean / sum) is NaN, and its gradient row is all NaN.
#pragma once

#include <cstdint>
#include <string_view>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

enum class CrossEntropyReduction : uint8_t { kMean = 0, kSum = 1, kNone = 2 };

// "mean", "sum" or "none"; anything else is InvalidArgument naming the op.
Status cross_entropy_reduction_from_name(std::string_view name, CrossEntropyReduction* out);

struct CrossEntropyForwardArgs {
  TensorView logits;     // [..., V] f32/f16/bf16, V >= 1; rows may be strided
  TensorView labels;     // logits' leading shape ([T] for [T, V]), int32 or int64, dense
  TensorView loss;       // out f32, dense: one element (any shape, e.g. []) for mean / sum,
                         // labels' shape for none
  TensorView lse;        // optional out, f32 with one element per row (dense): log-sum-exp
                         // saved for the backward pass (0 for ignored rows)
  TensorView workspace;  // uint8 [cross_entropy_forward_workspace_bytes(rows, reduction)]
  int64_t ignore_index = -100;      // rows with this label give 0 and do not count
  float label_smoothing = 0.0f;     // ls in [0, 1]
  CrossEntropyReduction reduction = CrossEntropyReduction::kMean;
};

struct CrossEntropyBackwardArgs {
  TensorView dloss;      // f32, dense: gradient of loss, loss' shape (one element for
                         // mean / sum, labels' shape for none)
  TensorView logits;     // [..., V], the forward input
  TensorView labels;     // the forward labels
  TensorView lse;        // f32, one element per row, from the forward pass
  TensorView dlogits;    // out, logits' shape and dtype (dense)
  TensorView workspace;  // uint8 [cross_entropy_backward_workspace_bytes(rows, reduction)]
  int64_t ignore_index = -100;      // the forward's
  float label_smoothing = 0.0f;     // the forward's
  CrossEntropyReduction reduction = CrossEntropyReduction::kMean;  // the forward's
};

Status cross_entropy_forward(const CrossEntropyForwardArgs& args, const ExecContext& ctx);
Status cross_entropy_backward(const CrossEntropyBackwardArgs& args, const ExecContext& ctx);

// Scratch each direction needs, a pure function of the shape so that traced
// programs (JAX) can allocate it: the forward keeps per-row losses (f32 [rows]) for
// the fixed-order mean / sum; the backward keeps the mean's 1 / count scale.
int64_t cross_entropy_forward_workspace_bytes(int64_t rows, CrossEntropyReduction reduction);
int64_t cross_entropy_backward_workspace_bytes(int64_t rows, CrossEntropyReduction reduction);

}  // namespace xpu::ops
