// layer_norm: the one C++ entry point per direction (see shared OPS.md).
//   y = (x - mean) * rsqrt(var + eps) * weight + bias
//   mean and var over the last axis, var the population variance (divide by N).
#pragma once

#include <cstdint>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

struct LayerNormForwardArgs {
  TensorView x;       // [..., N] f32/f16/bf16
  TensorView weight;  // [N], x's dtype
  TensorView bias;    // [N], x's dtype
  TensorView y;       // out, x's shape and dtype
  TensorView mean;    // optional out, [rows] f32: saved for the backward pass
  TensorView rstd;    // optional out, [rows] f32: 1 / sqrt(var + eps), saved for backward
  float eps = 1e-5f;
};

struct LayerNormBackwardArgs {
  TensorView dy;         // [..., N], x's dtype
  TensorView x;          // the forward input
  TensorView weight;     // [N]
  TensorView mean;       // [rows] f32 from the forward pass
  TensorView rstd;       // [rows] f32 from the forward pass
  TensorView dx;         // out, x's shape and dtype
  TensorView dweight;    // out, [N] in weight's dtype, accumulated in f32
  TensorView dbias;      // out, [N] in weight's dtype, accumulated in f32
  TensorView workspace;  // uint8 [layer_norm_backward_workspace_bytes(rows, N)]
};

Status layer_norm_forward(const LayerNormForwardArgs& args, const ExecContext& ctx);
Status layer_norm_backward(const LayerNormBackwardArgs& args, const ExecContext& ctx);

// Scratch the backward pass needs: per-row-group partial sums of dweight and of
// dbias in f32 ([2][groups][N] floats), reduced in group order (deterministic).
// A pure function of the shape so that traced programs (JAX) can allocate it.
int64_t layer_norm_backward_row_groups(int64_t rows, int64_t n);
int64_t layer_norm_backward_workspace_bytes(int64_t rows, int64_t n);

}  // namespace xpu::ops
