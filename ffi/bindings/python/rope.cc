// Native binding of rope: writes into caller-provided outputs (the Python layer
// allocates them, from the framework the caller uses).
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/rope.h"

namespace xpu::python {

void bind_rope(nb::module_& m) {
  m.def(
      "rope_forward",
      [](Array x, Array cos, Array sin, MutableArray y, bool interleaved,
         const std::string& policy, uintptr_t stream) {
        ops::RopeForwardArgs a;
        a.x = view_of(x);
        a.cos = view_of(cos);
        a.sin = view_of(sin);
        a.y = view_of(y);
        a.interleaved = interleaved;
        const ExecContext ctx = make_context("rope", policy, stream);
        nogil([&] { return ops::rope_forward(a, ctx); });
      },
      nb::arg("x"), nb::arg("cos"), nb::arg("sin"), nb::arg("y"), nb::arg("interleaved"),
      nb::arg("policy"), nb::arg("stream"),
      "y = rotary embedding of x [B, S, H, D] by cos / sin [S, D/2], into y.");

  m.def(
      "rope_backward",
      [](Array dy, Array cos, Array sin, MutableArray dx, bool interleaved,
         const std::string& policy, uintptr_t stream) {
        ops::RopeBackwardArgs a;
        a.dy = view_of(dy);
        a.cos = view_of(cos);
        a.sin = view_of(sin);
        a.dx = view_of(dx);
        a.interleaved = interleaved;
        const ExecContext ctx = make_context("rope", policy, stream);
        nogil([&] { return ops::rope_backward(a, ctx); });
      },
      nb::arg("dy"), nb::arg("cos"), nb::arg("sin"), nb::arg("dx"), nb::arg("interleaved"),
      nb::arg("policy"), nb::arg("stream"),
      "dx = dy rotated by the negative angle, into dx.");
}

}  // namespace xpu::python
