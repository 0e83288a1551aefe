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

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  std::vector<float> e(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.x.as<T>() + r * p.x_stride;
    T* y = a.y.as<T>() + r * p.n;
    float m = -INFINITY;
    for (int64_t i = 0; i < p.n; ++i) {
      e[i] = a.scale * to_float(x[i]);
      m = std::fmax(m, e[i]);
    }
    const float sum = blocked_sum(p.n, [&](int64_t i) { return e[i] = std::exp(e[i] - m); });
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < p.n; ++i) y[i] = from_float<T>(e[i] * inv);
  }
  return Status::Ok();
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* dy = a.dy.as<T>() + r * p.dy_stride;
    const T* y = a.y.as<T>() + r * p.y_stride;
    T* dx = a.dx.as<T>() + r * p.n;
    const float dot = blocked_sum(p.n, [&](int64_t i) { return to_float(dy[i]) * to_float(y[i]); });
    for (int64_t i = 0; i < p.n; ++i)
      dx[i] = from_float<T>(a.scale * to_float(y[i]) * (to_float(dy[i]) - dot));
  }
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, "softmax", DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::softmax_detail
