// Native binding of cross_entropy: writes into caller-provided outputs (the Python
// layer allocates them, and the workspace, from the framework the caller uses).
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/cross_entropy.h"

namespace xpu::python {
namespace {

ops::CrossEntropyReduction reduction_of(const std::string& name) {
  ops::CrossEntropyReduction r;
  throw_if_error(ops::cross_entropy_reduction_from_name(name, &r));
  return r;
}

// The options both directions take.
template <typename Args>
void set_options(Args& a, int64_t ignore_index, float label_smoothing,
                 const std::string& reduction) {
  a.ignore_index = ignore_index;
  a.label_smoothing = label_smoothing;
  a.reduction = reduction_of(reduction);
}

}  // namespace

void bind_cross_entropy(nb::module_& m) {
  m.def(
      "cross_entropy_forward",
      [](Array logits, Array labels, MutableArray loss, MutableArray lse, MutableArray workspace,
         int64_t ignore_index, float label_smoothing, const std::string& reduction,
         const std::string& policy, uintptr_t stream) {
        ops::CrossEntropyForwardArgs a;
        a.logits = view_of(logits);
        a.labels = view_of(labels);
        a.loss = view_of(loss);
        a.lse = view_of(lse);
        a.workspace = view_of(workspace);
        set_options(a, ignore_index, label_smoothing, reduction);
        const ExecContext ctx = make_context("cross_entropy", policy, stream);
        nogil([&] { return ops::cross_entropy_forward(a, ctx); });
      },
      nb::arg("logits"), nb::arg("labels"), nb::arg("loss"), nb::arg("lse").none(),
      nb::arg("workspace").none(), nb::arg("ignore_index"), nb::arg("label_smoothing"),
      nb::arg("reduction"), nb::arg("policy"), nb::arg("stream"),
      "Cross-entropy of logits [..., V] against labels into loss (and lse).");

  m.def(
      "cross_entropy_backward",
      [](Array dloss, Array logits, Array labels, Array lse, MutableArray dlogits,
         MutableArray workspace, int64_t ignore_index, float label_smoothing,
         const std::string& reduction, const std::string& policy, uintptr_t stream) {
        ops::CrossEntropyBackwardArgs a;
        a.dloss = view_of(dloss);
        a.logits = view_of(logits);
        a.labels = view_of(labels);
        a.lse = view_of(lse);
        a.dlogits = view_of(dlogits);
        a.workspace = view_of(workspace);
        set_options(a, ignore_index, label_smoothing, reduction);
        const ExecContext ctx = make_context("cross_entropy", policy, stream);
        nogil([&] { return ops::cross_entropy_backward(a, ctx); });
      },
      nb::arg("dloss"), nb::arg("logits"), nb::arg("labels"), nb::arg("lse"),
      nb::arg("dlogits"), nb::arg("workspace").none(), nb::arg("ignore_index"),
      nb::arg("label_smoothing"), nb::arg("reduction"), nb::arg("policy"), nb::arg("stream"),
      "Gradient of cross_entropy with respect to logits, into dlogits.");

  m.def(
      "cross_entropy_forward_workspace_bytes",
      [](int64_t rows, const std::string& reduction) {
        return ops::cross_entropy_forward_workspace_bytes(rows, reduction_of(reduction));
      },
      nb::arg("rows"), nb::arg("reduction"), "Scratch bytes cross_entropy_forward needs.");
  m.def(
      "cross_entropy_backward_workspace_bytes",
      [](int64_t rows, const std::string& reduction) {
        return ops::cross_entropy_backward_workspace_bytes(rows, reduction_of(reduction));
      },
      nb::arg("rows"), nb::arg("reduction"), "Scratch bytes cross_entropy_backward needs.");
}

}  // namespace xpu::python
