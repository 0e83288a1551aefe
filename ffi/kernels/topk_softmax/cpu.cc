// topk_softmax on the CPU: one row at a time, f32 arithmetic, sums in a fixed order
// (so all three policies share it: it is deterministic and plain). The k largest
// are found by a partial sort of the row's positions under the total order of
// ordered_key (NaN above +inf, -0 equal to +0, ties to the lower index).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/common/blocked_sum.h"
#include "kernels/common/half.h"
#include "xpuruntime/ops/topk_softmax.h"

namespace xpu::ops::topk_softmax_detail {
namespace {

using host::from_float;
using host::to_float;

constexpr const char* kOp = "topk_softmax";

// Monotone map of a float onto uint32: every NaN to the top, -0 onto +0.
uint32_t ordered_key(float f) {
  const uint32_t u = host::float_to_bits(f), mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) return 0xffffffffu;
  return (u >> 31) ? 0x80000000u - mag : 0x80000000u + mag;
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  std::vector<float> v(p.e);
  std::vector<uint32_t> key(p.e);
  std::vector<int32_t> order(p.e);
  std::vector<float> ex(p.k);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.logits.as<T>() + r * p.logits_stride;
    for (int64_t i = 0; i < p.e; ++i) {
      v[i] = to_float(x[i]);
      key[i] = ordered_key(v[i]);
      order[i] = static_cast<int32_t>(i);
    }
    std::partial_sort(order.begin(), order.begin() + p.k, order.end(), [&](int32_t i, int32_t j) {
      return key[i] != key[j] ? key[i] > key[j] : i < j;
    });
    const float m = v[order[0]];  // the max (NaN when the row has one)
    float sum = 0.f;
    for (int64_t j = 0; j < p.k; ++j) sum += ex[j] = std::exp(v[order[j]] - m);
    if (!a.renormalize) {
      sum = host::blocked_sum(p.e, [&](int64_t i) { return std::exp(v[i] - m); });
    }
    float* w = a.weights.as<float>() + r * p.k;
    int32_t* idx = a.indices.as<int32_t>() + r * p.k;
    for (int64_t j = 0; j < p.k; ++j) {
      idx[j] = order[j];
      w[j] = ex[j] / sum;
    }
  }
  return Status::Ok();
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  // Corrupt indices are refused before anything is written.
  std::vector<uint8_t> seen(p.e);
  for (int64_t r = 0; r < p.rows; ++r) {
    const int32_t* idx = a.indices.as<int32_t>() + r * p.indices_stride;
    std::fill(seen.begin(), seen.end(), 0);
    for (int64_t j = 0; j < p.k; ++j) {
      if (idx[j] < 0 || idx[j] >= p.e)
        return InvalidArgument(kOp, ": 'indices' row ", r, " holds ", idx[j], ", outside [0, ",
                               p.e, "), the columns of 'logits'; pass the forward's logits and indices");
      if (seen[idx[j]]++)
        return InvalidArgument(kOp, ": 'indices' row ", r, " holds ", idx[j],
                               " twice; pass the forward's indices");
    }
  }
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* g = a.dweights.as<float>() + r * p.dweights_stride;
    const float* w = a.weights.as<float>() + r * p.weights_stride;
    const int32_t* idx = a.indices.as<int32_t>() + r * p.indices_stride;
    T* dx = a.dlogits.as<T>() + r * p.e;
    float dot = 0.f;
    for (int64_t j = 0; j < p.k; ++j) dot += g[j] * w[j];
    if (a.renormalize) {
      std::fill(dx, dx + p.e, from_float<T>(0.f));
    } else {
      const T* x = a.logits.as<T>() + r * p.logits_stride;
      const float m = to_float(x[idx[0]]), inv_sum = w[0];
      for (int64_t i = 0; i < p.e; ++i)
        dx[i] = from_float<T>(-dot * (inv_sum * std::exp(to_float(x[i]) - m)));
    }
    for (int64_t j = 0; j < p.k; ++j) dx[idx[j]] = from_float<T>(w[j] * (g[j] - dot));
  }
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, kOp, DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::topk_softmax_detail
