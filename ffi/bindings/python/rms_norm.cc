// Native binding of rms_norm: writes into caller-provided outputs (the Python
// layer allocates them, from the framework the caller uses).
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/rms_norm.h"

namespace xpu::python {

void bind_rms_norm(nb::module_& m) {
  m.def(
      "rms_norm_forward",
      [](Array x, Array weight, Array residual, MutableArray y, MutableArray h, MutableArray rstd,
         float eps, const std::string& policy, uintptr_t stream) {
        ops::RmsNormForwardArgs a;
        a.x = view_of(x);
        a.weight = view_of(weight);
        a.residual = view_of(residual);
        a.y = view_of(y);
        a.h = view_of(h);
        a.rstd = view_of(rstd);
        a.eps = eps;
        const ExecContext ctx = make_context("rms_norm", policy, stream);
        nogil([&] { return ops::rms_norm_forward(a, ctx); });
      },
      nb::arg("x"), nb::arg("weight"), nb::arg("residual").none(), nb::arg("y"),
      nb::arg("h").none(), nb::arg("rstd").none(), nb::arg("eps"), nb::arg("policy"),
      nb::arg("stream"),
      "y = x * rsqrt(mean(x^2) + eps) * weight over the last axis, into y (and h, rstd).");

  m.def(
      "rms_norm_backward",
      [](Array dy, Array x, Array weight, Array rstd, Array dh, MutableArray dx,
         MutableArray dweight, MutableArray workspace, const std::string& policy,
         uintptr_t stream) {
        ops::RmsNormBackwardArgs a;
        a.dy = view_of(dy);
        a.x = view_of(x);
        a.weight = view_of(weight);
        a.rstd = view_of(rstd);
        a.dh = view_of(dh);
        a.dx = view_of(dx);
        a.dweight = view_of(dweight);
        a.workspace = view_of(workspace);
        const ExecContext ctx = make_context("rms_norm", policy, stream);
        nogil([&] { return ops::rms_norm_backward(a, ctx); });
      },
      nb::arg("dy"), nb::arg("x"), nb::arg("weight"), nb::arg("rstd"), nb::arg("dh").none(),
      nb::arg("dx"), nb::arg("dweight"), nb::arg("workspace"), nb::arg("policy"),
      nb::arg("stream"), "Gradients of rms_norm into dx and dweight.");

  m.def("rms_norm_backward_workspace_bytes", &ops::rms_norm_backward_workspace_bytes,
        nb::arg("rows"), nb::arg("n"), "Scratch bytes rms_norm_backward needs for this shape.");
}

}  // namespace xpu::python
