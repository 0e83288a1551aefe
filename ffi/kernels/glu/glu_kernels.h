// Internal to the gated-linear-unit family (swiglu, geglu): the validated problem
// a kernel receives and the kernel signatures the registry stores. One kernel
// template serves both ops, with the activation (activations.h) as a parameter.
#pragma once

#include <string_view>

#include "xpuruntime/ops/glu.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::glu_detail {

// Rows view of the validated arguments. Inputs carry their own row stride;
// outputs are dense (row stride n).
struct ForwardProblem {
  const GluForwardArgs* args;
  int64_t rows, n;
  int64_t gate_stride, up_stride;
};

struct BackwardProblem {
  const GluBackwardArgs* args;
  int64_t rows, n;
  int64_t dy_stride, gate_stride, up_stride;
};

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

// Register the kernels of one op of the family ("swiglu" or "geglu").
void register_cpu(Registry& r, std::string_view op);
void register_cuda(Registry& r, std::string_view op);

}  // namespace xpu::ops::glu_detail
