// Native binding of softmax: writes into caller-provided outputs (the Python
// layer allocates them, from the framework the caller uses).
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/softmax.h"

namespace xpu::python {

void bind_softmax(nb::module_& m) {
  m.def(
      "softmax_forward",
      [](Array x, MutableArray y, float scale, const std::string& policy, uintptr_t stream) {
        ops::SoftmaxForwardArgs a;
        a.x = view_of(x);
        a.y = view_of(y);
        a.scale = scale;
        const ExecContext ctx = make_context("softmax", policy, stream);
        nogil([&] { return ops::softmax_forward(a, ctx); });
      },
      nb::arg("x"), nb::arg("y"), nb::arg("scale"), nb::arg("policy"), nb::arg("stream"),
      "y = softmax(scale * x) over the last axis, into y.");

  m.def(
      "softmax_backward",
      [](Array dy, Array y, MutableArray dx, float scale, const std::string& policy,
         uintptr_t stream) {
        ops::SoftmaxBackwardArgs a;
        a.dy = view_of(dy);
        a.y = view_of(y);
        a.dx = view_of(dx);
        a.scale = scale;
        const ExecContext ctx = make_context("softmax", policy, stream);
        nogil([&] { return ops::softmax_backward(a, ctx); });
      },
      nb::arg("dy"), nb::arg("y"), nb::arg("dx"), nb::arg("scale"), nb::arg("policy"),
      nb::arg("stream"), "dx = scale * y * (dy - sum(dy * y)) over the last axis, into dx.");
}

}  // namespace xpu::python
