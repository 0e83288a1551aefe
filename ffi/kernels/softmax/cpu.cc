// softmax on the CPU: one row at a time, f32 arithmetic, fixed summation order
// (so all three policies share it: it is deterministic and plain). Row sums are
// taken in blocks (host::blocked_sum, blocked_sum.h) and then over the blocks, which keeps the
// rounding error of long rows (N = 65536+) near that of a tree reduction.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/common/blocked_sum.h"
#include "kernels/common/half.h"
#include "kernels/softmax/softmax_kernels.h"

namespace xpu::ops::softmax_detail {
namespace {

using host::from_float;
using host::to_float;

using host::blocked_sum;

// y = e / sum(e), e = exp(s - max(s)), s = scale * x, into e (p.n floats); returns 1 / sum.
template <typename T>
float row_exp(const T* x, int64_t n, float scale, std::vector<float>& e) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    e[i] = scale * to_float(x[i]);
    m = std::fmax(m, e[i]);
  }
  return 1.0f / blocked_sum(n, [&](int64_t i) { return e[i] = std::exp(e[i] - m); });
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  std::vector<float> e(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float inv = row_exp(a.x.as<T>() + r * p.x_stride, p.n, a.scale, e);
    T* y = a.y.as<T>() + r * p.n;
    for (int64_t i = 0; i < p.n; ++i) y[i] = from_float<T>(e[i] * inv);
  }
  return Status::Ok();
}

// y recomputed from x as the forward computes it (f32, not rounded to T).
template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  std::vector<float> e(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* dy = a.dy.as<T>() + r * p.dy_stride;
    T* dx = a.dx.as<T>() + r * p.n;
    const float inv = row_exp(a.x.as<T>() + r * p.x_stride, p.n, a.scale, e);
    for (int64_t i = 0; i < p.n; ++i) e[i] *= inv;
    const float dot = blocked_sum(p.n, [&](int64_t i) { return to_float(dy[i]) * e[i]; });
    for (int64_t i = 0; i < p.n; ++i) dx[i] = from_float<T>(a.scale * e[i] * (to_float(dy[i]) - dot));
  }
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, "softmax", DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::softmax_detail
