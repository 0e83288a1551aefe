// geglu: the one C++ entry point per direction (see shared OPS.md).
//   y = gelu_tanh(gate) * up,
//   gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
//   backward: dgate = dy * up * gelu_tanh'(g), dup = dy * gelu_tanh(g)
#pragma once

#include "xpuruntime/ops/glu.h"

namespace xpu::ops {

using GegluForwardArgs = GluForwardArgs;
using GegluBackwardArgs = GluBackwardArgs;

Status geglu_forward(const GegluForwardArgs& args, const ExecContext& ctx);
Status geglu_backward(const GegluBackwardArgs& args, const ExecContext& ctx);

}  // namespace xpu::ops
