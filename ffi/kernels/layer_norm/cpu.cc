// layer_norm on the CPU: one row at a time, f32 arithmetic, fixed summation order
// (so all three policies share it: it is deterministic and plain).
// Mean and variance are two passes over the row (never E[x^2] - E[x]^2), the
// second one correcting the first's mean; row sums are blocked (256-element
// partial sums added in order) to keep f32 rounding error small on long rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/common/blocked_sum.h"
#include "kernels/common/half.h"
#include "kernels/layer_norm/layer_norm_kernels.h"

namespace xpu::ops::layer_norm_detail {
namespace {

using host::from_float;
using host::to_float;

using host::blocked_sum;

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  const T* w = a.weight.as<T>();
  const T* b = a.bias.as<T>();
  const float inv_n = 1.0f / static_cast<float>(p.n);
  std::vector<float> v(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.x.as<T>() + r * p.x_stride;
    T* y = a.y.as<T>() + r * p.n;
    for (int64_t i = 0; i < p.n; ++i) v[i] = to_float(x[i]);
    const float m0 = blocked_sum(p.n, [&](int64_t i) { return v[i]; }) * inv_n;
    // Corrected two-pass: the deviations' own sum fixes the rounding left in m0
    // (at mean 1000 and spread 0.1 over 65536 columns m0 alone is off by ~2e-4,
    // 0.2% of y), and removes its effect from the variance.
    float sd = 0.f;
    const float sq = blocked_sum(p.n, [&](int64_t i) {
      const float d = v[i] - m0;
      sd += d;
      return d * d;
    });
    const float mean = m0 + sd * inv_n;
    const float var = std::max(0.f, (sq - sd * sd * inv_n) * inv_n);
    const float rstd = 1.0f / std::sqrt(var + a.eps);
    if (a.mean.present()) a.mean.as<float>()[r] = mean;
    if (a.rstd.present()) a.rstd.as<float>()[r] = rstd;
    for (int64_t i = 0; i < p.n; ++i)
      y[i] = from_float<T>((v[i] - mean) * rstd * to_float(w[i]) + to_float(b[i]));
  }
  return Status::Ok();
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  const T* w = a.weight.as<T>();
  // The first partial row of each half of the workspace.
  float* dw = a.workspace.as<float>();
  float* db = dw + p.row_groups * p.n;
  for (int64_t i = 0; i < p.n; ++i) dw[i] = db[i] = 0.f;
  const float inv_n = 1.0f / static_cast<float>(p.n);
  std::vector<float> xhat(p.n), g(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.x.as<T>() + r * p.x_stride;
    const T* dy = a.dy.as<T>() + r * p.dy_stride;
    T* dx = a.dx.as<T>() + r * p.n;
    const float mean = a.mean.as<float>()[r], rstd = a.rstd.as<float>()[r];
    for (int64_t i = 0; i < p.n; ++i) {
      const float gy = to_float(dy[i]);
      xhat[i] = (to_float(x[i]) - mean) * rstd;
      g[i] = gy * to_float(w[i]);
      dw[i] += gy * xhat[i];
      db[i] += gy;
    }
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight.
    const float mg = blocked_sum(p.n, [&](int64_t i) { return g[i]; }) * inv_n;
    const float mgx = blocked_sum(p.n, [&](int64_t i) { return g[i] * xhat[i]; }) * inv_n;
    for (int64_t i = 0; i < p.n; ++i) dx[i] = from_float<T>(rstd * (g[i] - mg - xhat[i] * mgx));
  }
  for (int64_t i = 0; i < p.n; ++i) {
    a.dweight.as<T>()[i] = from_float<T>(dw[i]);
    a.dbias.as<T>()[i] = from_float<T>(db[i]);
  }
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, "layer_norm", DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::layer_norm_detail
