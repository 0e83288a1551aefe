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

// Registers the kernels of the one activation whose op is `op` (swiglu or geglu).
template <typename Act>
void register_if(Registry& r, std::string_view op) {
  if (op != Act::kOp) return;
  register_float_family<float, host::f16, host::bf16>(
      r, Act::kOp, DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T, Act>, &backward<T, Act>}; });
}

}  // namespace

void register_cpu(Registry& r, std::string_view op) {
  register_if<Silu>(r, op);
  register_if<GeluTanh>(r, op);
}

}  // namespace xpu::ops::glu_detail
