// swiglu / geglu on the CPU: elementwise over rows, f32 arithmetic. One kernel per
// direction, templated on the activation; it serves every policy (it is plain and
// has no reductions, so it is deterministic).
#include "kernels/common/half.h"
#include "kernels/glu/activations.h"
#include "kernels/glu/glu_kernels.h"

namespace xpu::ops::glu_detail {
namespace {

using host::from_float;
using host::to_float;

template <typename T, typename Act>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* g = a.gate.as<T>() + r * p.gate_stride;
    const T* u = a.up.as<T>() + r * p.up_stride;
    T* y = a.y.as<T>() + r * p.n;
    for (int64_t i = 0; i < p.n; ++i) y[i] = from_float<T>(Act::act(to_float(g[i])) * to_float(u[i]));
  }
  return Status::Ok();
}

template <typename T, typename Act>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* dy = a.dy.as<T>() + r * p.dy_stride;
    const T* g = a.gate.as<T>() + r * p.gate_stride;
    const T* u = a.up.as<T>() + r * p.up_stride;
    T* dg = a.dgate.as<T>() + r * p.n;
    T* du = a.dup.as<T>() + r * p.n;
    for (int64_t i = 0; i < p.n; ++i) {
      float act, dact;
      Act::act_grad(to_float(g[i]), &act, &dact);
      const float d = to_float(dy[i]);
      dg[i] = from_float<T>(d * to_float(u[i]) * dact);
      du[i] = from_float<T>(d * act);
    }
  }
  return Status::Ok();
}

template <typename T, typename Act>
void register_dtype(Registry& r, DType dt) {
  const auto all = {Policy::kFast, Policy::kDeterministic, Policy::kReference};
  register_kernel(r, Act::kOp, Direction::kForward, DeviceKind::kCPU, dt, all, &forward<T, Act>);
  register_kernel(r, Act::kOp, Direction::kBackward, DeviceKind::kCPU, dt, all, &backward<T, Act>);
}

template <typename Act>
void register_act(Registry& r) {
  register_dtype<float, Act>(r, DType::kF32);
  register_dtype<host::f16, Act>(r, DType::kF16);
  register_dtype<host::bf16, Act>(r, DType::kBF16);
}

}  // namespace

void register_cpu(Registry& r) {
  register_act<Silu>(r);
  register_act<GeluTanh>(r);
}

}  // namespace xpu::ops::glu_detail
