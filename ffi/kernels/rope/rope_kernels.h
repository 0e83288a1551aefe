// Internal to rope: the validated problem a kernel receives and the kernel
// signature the registry stores (keyed by x's dtype; cos / sin may be float32
// or x's dtype, a runtime choice inside each kernel). Frontends never see this file.
#pragma once

#include "xpuruntime/ops/rope.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::rope_detail {

// One rotation, forward or backward: out = rotate(in, cos, sign * sin).
// Rows are the B * S * H vectors of length d; row r = (b * S + s) * H + h uses
// position s. `in` is read through its own strides (any layout whose D axis is
// contiguous, e.g. Hugging Face's [B, H, S, D] transposed to [B, S, H, D]); `out`
// is dense.
struct Problem {
  const void* in;           // x (forward) or dy (backward)
  void* out;                // y or dx, dense (row stride d)
  const void* cos;
  const void* sin;
  DType cs_dtype;           // dtype of cos and sin: float32 or in's dtype
  int64_t rows, seq, heads, d;
  int64_t in_stride;        // when in_rows: row stride of `in`, in elements
  int64_t in_strides[3];    // strides of in's B, S and H axes, in elements
  bool in_rows;             // the B, S, H axes collapse to one row stride (in_stride)
  int64_t cos_stride, sin_stride;  // strides of cos's and sin's S axis, in elements
  bool interleaved;
  bool backward;            // rotate by the negative angle (sin negated)
};

// Element offset of row r's first element in `in`.
inline int64_t in_row_offset(const Problem& p, int64_t r) {
  if (p.in_rows) return r * p.in_stride;
  const int64_t h = r % p.heads, token = r / p.heads;
  return (token / p.seq) * p.in_strides[0] + (token % p.seq) * p.in_strides[1] +
         h * p.in_strides[2];
}

using Kernel = Status(const Problem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::rope_detail
