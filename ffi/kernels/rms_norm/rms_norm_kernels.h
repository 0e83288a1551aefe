// Internal to the rms_norm family: the validated problem a kernel receives and
// the kernel signatures the registry stores. Frontends never see this file.
#pragma once

#include "xpuruntime/ops/rms_norm.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::rms_norm_detail {

// Rows view of the validated arguments. Inputs carry their own row stride;
// outputs are dense (row stride n).
struct ForwardProblem {
  const RmsNormForwardArgs* args;
  int64_t rows, n;
  int64_t x_stride, residual_stride;
};

struct BackwardProblem {
  const RmsNormBackwardArgs* args;
  int64_t rows, n;
  int64_t dy_stride, x_stride, dh_stride;
  int64_t row_groups;  // partial dweight rows held in the workspace
};

// Where the workspace's row rstd start, in floats: after the row_groups x n dweight
// partials, 16-byte aligned. It holds kRstdChunkRows of them at most (the CUDA
// fallback walks the rows in chunks), so the workspace is bounded in the row count
// (JAX exports with a symbolic batch need that).
int64_t rms_norm_backward_rstd_offset(int64_t row_groups, int64_t n);
inline constexpr int64_t kRstdChunkRows = int64_t{1} << 16;

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::rms_norm_detail
