// softmax: the one C++ entry point per direction (see shared OPS.md).
//   s = scale * x,  y = exp(s - max(s)) / sum(exp(s - max(s)))  over the last axis
//   backward: dx = scale * y * (dy - sum(dy * y))
#pragma once

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

struct SoftmaxForwardArgs {
  TensorView x;  // [..., N] f32/f16/bf16
  TensorView y;  // out, x's shape and dtype (dense)
  float scale = 1.0f;
};

struct SoftmaxBackwardArgs {
  TensorView dy;  // [..., N], y's dtype: gradient of y
  TensorView y;   // [..., N], the forward output
  TensorView dx;  // out, y's shape and dtype (dense)
  float scale = 1.0f;  // the forward's scale
};

Status softmax_forward(const SoftmaxForwardArgs& args, const ExecContext& ctx);
Status softmax_backward(const SoftmaxBackwardArgs& args, const ExecContext& ctx);

}  // namespace xpu::ops
