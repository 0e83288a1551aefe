// swiglu: the one C++ entry point per direction (see shared OPS.md).
//   y = silu(gate) * up,  silu(g) = g * sigmoid(g)
//   backward: dgate = dy * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))), dup = dy * silu(g)
#pragma once

#include "xpuruntime/ops/glu.h"

namespace xpu::ops {

using SwigluForwardArgs = GluForwardArgs;
using SwigluBackwardArgs = GluBackwardArgs;

Status swiglu_forward(const SwigluForwardArgs& args, const ExecContext& ctx);
Status swiglu_backward(const SwigluBackwardArgs& args, const ExecContext& ctx);

}  // namespace xpu::ops
