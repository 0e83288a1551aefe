// Internal to the layer_norm family: the validated problem a kernel receives and
// the kernel signatures the registry stores. Frontends never see this file.
#pragma once

#include "xpuruntime/ops/layer_norm.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::layer_norm_detail {

// Rows view of the validated arguments. Inputs carry their own row stride;
// outputs are dense (row stride n).
struct ForwardProblem {
  const LayerNormForwardArgs* args;
  int64_t rows, n;
  int64_t x_stride;
};

struct BackwardProblem {
  const LayerNormBackwardArgs* args;
  int64_t rows, n;
  int64_t dy_stride, x_stride;
  // Partial rows held in the workspace: dweight partials at [0, groups * n),
  // dbias partials at [groups * n, 2 * groups * n) floats.
  int64_t row_groups;
};

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::layer_norm_detail
