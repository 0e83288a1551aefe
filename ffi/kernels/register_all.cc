// The built-in kernels: one register_<op>_kernels per op of ffi/ops.def, called
// explicitly (rather than by static registrars) so that linking the core as a
// static library never drops a kernel.
#include "xpuruntime/registry.h"

namespace xpu {

namespace ops {
#define XPU_OP(name, onnx) void register_##name##_kernels(Registry& r);
#include "ops.def"
#undef XPU_OP
}  // namespace ops

void register_builtin_kernels(Registry& r) {
#define XPU_OP(name, onnx) ops::register_##name##_kernels(r);
#include "ops.def"
#undef XPU_OP
}

}  // namespace xpu
