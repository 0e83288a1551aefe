// rope on the CPU: one row (B, S, H index) at a time, f32 arithmetic. Elementwise,
// so the one kernel serves every policy.
#include "kernels/common/half.h"
#include "kernels/rope/rope_kernels.h"

namespace xpu::ops::rope_detail {
namespace {

using host::from_float;
using host::to_float;

// T: storage type of in / out; C: storage type of cos / sin.
template <typename T, typename C>
void rotate(const Problem& p) {
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  const C* cs = static_cast<const C*>(p.cos);
  const C* sn = static_cast<const C*>(p.sin);
  const int64_t half = p.d / 2;
  const float sign = p.backward ? -1.0f : 1.0f;
  // Row r = (b * S + s) * H + h: its position is s = (r / H) % S.
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t pos = (r / p.heads) % p.seq;
    const T* x = in + in_row_offset(p, r);
    T* y = out + r * p.d;
    const C* c = cs + pos * p.cos_stride;
    const C* s = sn + pos * p.sin_stride;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t i1 = p.interleaved ? 2 * i : i;
      const int64_t i2 = p.interleaved ? 2 * i + 1 : i + half;
      const float ci = to_float(c[i]), si = sign * to_float(s[i]);
      const float x1 = to_float(x[i1]), x2 = to_float(x[i2]);
      y[i1] = from_float<T>(x1 * ci - x2 * si);
      y[i2] = from_float<T>(x2 * ci + x1 * si);
    }
  }
}

template <typename T>
Status kernel(const Problem& p, const ExecContext&) {
  if (p.cs_dtype == DType::kF32) rotate<T, float>(p);
  else rotate<T, T>(p);
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, "rope", DeviceKind::kCPU, []<typename T>() { return std::pair{&kernel<T>, &kernel<T>}; });
}

}  // namespace xpu::ops::rope_detail
