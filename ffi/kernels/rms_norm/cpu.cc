// rms_norm on the CPU: one row at a time, f32 arithmetic, fixed summation order
// (so all three policies share it: it is deterministic and plain).
#include <cmath>
#include <vector>

#include "kernels/common/half.h"
#include "kernels/rms_norm/rms_norm_kernels.h"

namespace xpu::ops::rms_norm_detail {
namespace {

using host::from_float;
using host::to_float;

// rsqrt(mean(v^2) + eps) of a row given as v(i), summed in index order: the forward and
// the backward (which recomputes it) share it, so both get the same bits.
template <typename V>
float row_rstd(int64_t n, float eps, V v) {
  float sumsq = 0.f;
  for (int64_t i = 0; i < n; ++i) sumsq += v(i) * v(i);
  return 1.0f / std::sqrt(sumsq / static_cast<float>(n) + eps);
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  const T* w = a.weight.as<T>();
  std::vector<float> h(p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.x.as<T>() + r * p.x_stride;
    T* y = a.y.as<T>() + r * p.n;
    for (int64_t i = 0; i < p.n; ++i) {
      float v = to_float(x[i]);
      if (a.residual.present()) {
        // h is rounded to x's dtype before normalizing (OPS.md).
        const T hv = from_float<T>(v + to_float(a.residual.as<T>()[r * p.residual_stride + i]));
        a.h.as<T>()[r * p.n + i] = hv;
        v = to_float(hv);
      }
      h[i] = v;
    }
    const float rstd = row_rstd(p.n, a.eps, [&](int64_t i) { return h[i]; });
    for (int64_t i = 0; i < p.n; ++i) y[i] = from_float<T>(h[i] * rstd * to_float(w[i]));
  }
  return Status::Ok();
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  const T* w = a.weight.as<T>();
  float* dw = a.workspace.as<float>();  // first n floats of the workspace
  for (int64_t i = 0; i < p.n; ++i) dw[i] = 0.f;
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = a.x.as<T>() + r * p.x_stride;
    const T* dy = a.dy.as<T>() + r * p.dy_stride;
    T* dx = a.dx.as<T>() + r * p.n;
    const float rstd = row_rstd(p.n, a.eps, [&](int64_t i) { return to_float(x[i]); });
    float dot = 0.f;  // sum(dy * w * xhat)
    for (int64_t i = 0; i < p.n; ++i) {
      const float xhat = to_float(x[i]) * rstd, g = to_float(dy[i]);
      dot += g * to_float(w[i]) * xhat;
      dw[i] += g * xhat;
    }
    dot /= static_cast<float>(p.n);
    for (int64_t i = 0; i < p.n; ++i) {
      const float xhat = to_float(x[i]) * rstd;
      float v = rstd * (to_float(dy[i]) * to_float(w[i]) - xhat * dot);
      if (a.dh.present()) v += to_float(a.dh.as<T>()[r * p.dh_stride + i]);
      dx[i] = from_float<T>(v);
    }
  }
  for (int64_t i = 0; i < p.n; ++i) a.dweight.as<T>()[i] = from_float<T>(dw[i]);
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, "rms_norm", DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::rms_norm_detail
