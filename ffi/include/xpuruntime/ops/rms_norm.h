// rms_norm: the one C++ entry point per direction (see shared OPS.md).
//   y = x * rsqrt(mean(x^2, -1) + eps) * weight
//   with residual: h = x + residual (rounded to x's dtype), y = rms_norm(h)
#pragma once

#include <cstdint>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

struct RmsNormForwardArgs {
  TensorView x;         // [..., N] f32/f16/bf16
  TensorView weight;    // [N], x's dtype
  TensorView residual;  // optional, x's shape and dtype
  TensorView y;         // out, x's shape and dtype
  TensorView h;         // out when residual is present: x + residual
  float eps = 1e-6f;
};

// The backward recomputes rstd from x (no saved statistics), so that it needs only
// the forward's inputs: JAX then drops a forward whose outputs are all dead.

struct RmsNormBackwardArgs {
  TensorView dy;         // [..., N], x's dtype
  TensorView x;          // the normalized input (h when a residual was added)
  TensorView weight;     // [N]
  TensorView dh;         // optional, x's shape: gradient flowing into the h output
  TensorView dx;         // out, x's shape (also the residual's gradient)
  TensorView dweight;    // out, [N] in weight's dtype, accumulated in f32
  TensorView workspace;  // uint8 [rms_norm_backward_workspace_bytes(rows, N)]
  float eps = 1e-6f;     // the forward's
};

Status rms_norm_forward(const RmsNormForwardArgs& args, const ExecContext& ctx);
Status rms_norm_backward(const RmsNormBackwardArgs& args, const ExecContext& ctx);

// Scratch the backward pass needs: per-row-group partial sums of dweight in f32,
// then (16-byte aligned) one f32 rstd a row, for a bounded chunk of rows at a time, for the
// kernels that re-read the rows. Bounded in the row count.
// A pure function of the shape so that traced programs (JAX) can allocate it.
int64_t rms_norm_backward_row_groups(int64_t rows, int64_t n);
int64_t rms_norm_backward_workspace_bytes(int64_t rows, int64_t n);

}  // namespace xpu::ops
