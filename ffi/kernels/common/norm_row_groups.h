// The row groups of the norm backwards (rms_norm, layer_norm): each group keeps
// one f32 partial sum per column of the parameter gradients in the workspace,
// and the groups are reduced in order (deterministic). One rule for both ops.
#pragma once

#include <algorithm>
#include <cstdint>

namespace xpu::ops {

inline int64_t norm_backward_row_groups(int64_t rows, int64_t n) {
  // Enough groups to fill an H100-class chip twice over, fewer when rows are few
  // or rows are long (the workspace grows with groups * n).
  const int64_t cap = n > 16384 ? 128 : 512;
  return std::max<int64_t>(1, std::min(rows, cap));
}

}  // namespace xpu::ops
