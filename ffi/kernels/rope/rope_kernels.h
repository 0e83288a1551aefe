// Internal to rope: the validated problem a kernel receives and the kernel
// signature the registry stores (keyed by x's dtype; cos / sin may be float32
// or x's dtype, a runtime choice inside each kernel). Frontends never see this file.
#pragma once

#include "xpuruntime/ops/rope.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::rope_detail {

// One rotation, forward or backward: out = rotate(in, cos, sign * sin).
// Rows are the B * S * H vectors of length d; row r uses position (r / heads) % seq.
struct Problem {
  const void* in;           // x (forward) or dy (backward)
  void* out;                // y or dx, dense (row stride d)
  const void* cos;
  const void* sin;
  DType cs_dtype;           // dtype of cos and sin: float32 or in's dtype
  int64_t rows, seq, heads, d;
  int64_t in_stride;        // row stride of `in`, in elements
  int64_t cos_stride, sin_stride;  // row strides of cos and sin, in elements
  bool interleaved;
  bool backward;            // rotate by the negative angle (sin negated)
};

using Kernel = Status(const Problem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::rope_detail
