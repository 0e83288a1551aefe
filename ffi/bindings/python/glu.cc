// Native bindings of the gated-linear-unit ops (swiglu, geglu): one binding
// template, the op's entry points as parameters. Outputs are caller-provided.
#include "bindings/python/python_adapter.h"
#include "xpuruntime/ops/geglu.h"
#include "xpuruntime/ops/swiglu.h"

namespace xpu::python {
namespace {

using ForwardFn = Status (*)(const ops::GluForwardArgs&, const ExecContext&);
using BackwardFn = Status (*)(const ops::GluBackwardArgs&, const ExecContext&);

// Names and docstrings are string literals: nanobind may keep the pointers.
struct GluNames {
  const char* op;            // "swiglu"
  const char* forward;       // "swiglu_forward"
  const char* backward;      // "swiglu_backward"
  const char* forward_doc;
  const char* backward_doc;
};

void bind_glu(nb::module_& m, const GluNames& names, ForwardFn fwd, BackwardFn bwd) {
  const char* op = names.op;
  m.def(
      names.forward,
      [op, fwd](Array gate, Array up, MutableArray y, const std::string& policy, uintptr_t stream) {
        ops::GluForwardArgs a;
        a.gate = view_of(gate);
        a.up = view_of(up);
        a.y = view_of(y);
        const ExecContext ctx = make_context(op, policy, stream);
        nogil([&] { return fwd(a, ctx); });
      },
      nb::arg("gate"), nb::arg("up"), nb::arg("y"), nb::arg("policy"), nb::arg("stream"),
      names.forward_doc);

  m.def(
      names.backward,
      [op, bwd](Array dy, Array gate, Array up, MutableArray dgate, MutableArray dup,
                const std::string& policy, uintptr_t stream) {
        ops::GluBackwardArgs a;
        a.dy = view_of(dy);
        a.gate = view_of(gate);
        a.up = view_of(up);
        a.dgate = view_of(dgate);
        a.dup = view_of(dup);
        const ExecContext ctx = make_context(op, policy, stream);
        nogil([&] { return bwd(a, ctx); });
      },
      nb::arg("dy"), nb::arg("gate"), nb::arg("up"), nb::arg("dgate"), nb::arg("dup"),
      nb::arg("policy"), nb::arg("stream"), names.backward_doc);
}

}  // namespace

void bind_swiglu(nb::module_& m) {
  bind_glu(m,
           {"swiglu", "swiglu_forward", "swiglu_backward", "y = silu(gate) * up, into y.",
            "Gradients of swiglu into dgate and dup."},
           &ops::swiglu_forward, &ops::swiglu_backward);
}
void bind_geglu(nb::module_& m) {
  bind_glu(m,
           {"geglu", "geglu_forward", "geglu_backward", "y = gelu_tanh(gate) * up, into y.",
            "Gradients of geglu into dgate and dup."},
           &ops::geglu_forward, &ops::geglu_backward);
}

}  // namespace xpu::python
