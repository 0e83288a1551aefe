// Arguments shared by the gated-linear-unit ops (swiglu.h, geglu.h):
//   y = act(gate) * up, elementwise; backward: dgate = dy * up * act'(gate), dup = dy * act(gate).
#pragma once

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ops {

struct GluForwardArgs {
  TensorView gate;  // [..., N] f32/f16/bf16
  TensorView up;    // gate's shape and dtype
  TensorView y;     // out, gate's shape and dtype (dense)
};

struct GluBackwardArgs {
  TensorView dy;     // gate's shape and dtype: gradient of y
  TensorView gate;   // [..., N], forward input
  TensorView up;     // gate's shape and dtype, forward input
  TensorView dgate;  // out, gate's shape and dtype (dense)
  TensorView dup;    // out, gate's shape and dtype (dense)
};

}  // namespace xpu::ops
