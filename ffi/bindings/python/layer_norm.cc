// Native binding of layer_norm: writes into caller-provided outputs (the Python
// layer allocates them, from the framework the caller uses).
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/layer_norm.h"

namespace xpu::python {

void bind_layer_norm(nb::module_& m) {
  m.def(
      "layer_norm_forward",
      [](Array x, Array weight, Array bias, MutableArray y, MutableArray mean, MutableArray rstd,
         float eps, const std::string& policy, uintptr_t stream) {
        ops::LayerNormForwardArgs a;
        a.x = view_of(x);
        a.weight = view_of(weight);
        a.bias = view_of(bias);
        a.y = view_of(y);
        a.mean = view_of(mean);
        a.rstd = view_of(rstd);
        a.eps = eps;
        const ExecContext ctx = make_context("layer_norm", policy, stream);
        nogil([&] { return ops::layer_norm_forward(a, ctx); });
      },
      nb::arg("x"), nb::arg("weight"), nb::arg("bias"), nb::arg("y"), nb::arg("mean").none(),
      nb::arg("rstd").none(), nb::arg("eps"), nb::arg("policy"), nb::arg("stream"),
      "y = (x - mean) * rsqrt(var + eps) * weight + bias over the last axis, into y "
      "(and mean, rstd).");

  m.def(
      "layer_norm_backward",
      [](Array dy, Array x, Array weight, Array mean, Array rstd, MutableArray dx,
         MutableArray dweight, MutableArray dbias, MutableArray workspace,
         const std::string& policy, uintptr_t stream) {
        ops::LayerNormBackwardArgs a;
        a.dy = view_of(dy);
        a.x = view_of(x);
        a.weight = view_of(weight);
        a.mean = view_of(mean);
        a.rstd = view_of(rstd);
        a.dx = view_of(dx);
        a.dweight = view_of(dweight);
        a.dbias = view_of(dbias);
        a.workspace = view_of(workspace);
        const ExecContext ctx = make_context("layer_norm", policy, stream);
        nogil([&] { return ops::layer_norm_backward(a, ctx); });
      },
      nb::arg("dy"), nb::arg("x"), nb::arg("weight"), nb::arg("mean"), nb::arg("rstd"),
      nb::arg("dx"), nb::arg("dweight"), nb::arg("dbias"), nb::arg("workspace"),
      nb::arg("policy"), nb::arg("stream"), "Gradients of layer_norm into dx, dweight and dbias.");

  m.def("layer_norm_backward_workspace_bytes", &ops::layer_norm_backward_workspace_bytes,
        nb::arg("rows"), nb::arg("n"), "Scratch bytes layer_norm_backward needs for this shape.");
}

}  // namespace xpu::python
