// Internal to softmax: the validated problem a kernel receives and the kernel
// signatures the registry stores. Frontends never see this file.
#pragma once

#include "xpuruntime/ops/softmax.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::softmax_detail {

// Rows view of the validated arguments. Inputs carry their own row stride;
// outputs are dense (row stride n).
struct ForwardProblem {
  const SoftmaxForwardArgs* args;
  int64_t rows, n;
  int64_t x_stride;
};

struct BackwardProblem {
  const SoftmaxBackwardArgs* args;
  int64_t rows, n;
  int64_t dy_stride, y_stride;
};

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::softmax_detail
