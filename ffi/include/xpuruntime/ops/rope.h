// rope: rotary position embedding, the one C++ entry point per direction (see shared OPS.md).
//   x [B, S, H, D], cos / sin [S, D/2] broadcast over B and H, D even.
//   interleaved = false (NeoX / Llama, rotate-half): x1 = x[..., :D/2], x2 = x[..., D/2:],
//     y1 = x1 cos - x2 sin,  y2 = x2 cos + x1 sin
//   interleaved = true (GPT-J): each pair (x[2i], x[2i+1]) rotates by angle i:
//     y[2i] = x[2i] cos_i - x[2i+1] sin_i,  y[2i+1] = x[2i+1] cos_i + x[2i] sin_i
//   backward: dx = the same rotation of dy by the negative angle (sin negated).
// Elementwise (no reductions): every policy is deterministic. `reference` runs
// plain scalar kernels, `fast` / `deterministic` 16-byte vectors where aligned.
#pragma once

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

struct RopeForwardArgs {
  TensorView x;    // [B, S, H, D] f32/f16/bf16, D even and contiguous; B, S and H may
                   // have any strides (Hugging Face's q.transpose(1, 2)), read as they are
  TensorView cos;  // [S, D/2], float32 or x's dtype; last dim contiguous, any S stride
  TensorView sin;  // [S, D/2], cos's dtype; last dim contiguous, any S stride
  TensorView y;    // out, x's shape and dtype (dense)
  bool interleaved = false;  // false: rotate-half (NeoX/Llama); true: adjacent pairs (GPT-J)
};

struct RopeBackwardArgs {
  TensorView dy;   // [B, S, H, D], gradient of y; f32/f16/bf16; strides as x
  TensorView cos;  // [S, D/2], the forward's cos (float32 or dy's dtype)
  TensorView sin;  // [S, D/2], the forward's sin (cos's dtype)
  TensorView dx;   // out, dy's shape and dtype (dense): gradient of x
  bool interleaved = false;  // the forward's layout
};

Status rope_forward(const RopeForwardArgs& args, const ExecContext& ctx);
Status rope_backward(const RopeBackwardArgs& args, const ExecContext& ctx);

}  // namespace xpu::ops
