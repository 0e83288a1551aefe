// The CPU kernels' row sum (layer_norm, softmax, topk_softmax): f32 sums over blocks of
// kSumBlock elements, then over the blocks in order. A fixed order, so every policy
// shares it (deterministic and plain), and the rounding error of long rows (N = 65536+)
// stays near that of a tree reduction.
#pragma once

#include <algorithm>
#include <cstdint>

namespace xpu::host {

inline constexpr int64_t kSumBlock = 256;

// sum over i in [0, n) of f(i), in the blocked order above.
template <typename F>
float blocked_sum(int64_t n, F&& f) {
  float total = 0.f;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t e = std::min(n, b + kSumBlock);
    float part = 0.f;
    for (int64_t i = b; i < e; ++i) part += f(i);
    total += part;
  }
  return total;
}

}  // namespace xpu::host
