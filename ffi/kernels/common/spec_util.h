// Helpers for the op specs of ffi/kernels/<family>/spec.cc: row counts for the
// workspace functions (read from shapes only: the views carry no data there), the
// CUDA half of each op's kernel registration, and the functions ffi/ops.def asks
// of each op.
#pragma once

#include <cstdint>

#include "xpuruntime/op_spec.h"

// `XPU_IF_CUDA(register_cuda(r));` compiles the call only in a CUDA build (where
// the CUDA kernels exist), so each op's register function is written once.
#if XPURUNTIME_WITH_CUDA
#define XPU_IF_CUDA(...) __VA_ARGS__
#else
#define XPU_IF_CUDA(...)
#endif

// The three functions ffi/ops.def asks of op `name`, in namespace xpu::ops: its two
// specs (constexpr OpSpecs of the file) and the registration of its kernels, CPU
// and, in a CUDA build, CUDA (`detail::register_cpu` / `detail::register_cuda`).
#define XPU_OP_SPECS(name, forward, backward, detail)       \
  const OpSpec& name##_forward_spec() { return forward; }   \
  const OpSpec& name##_backward_spec() { return backward; } \
  void register_##name##_kernels(Registry& r) {             \
    detail::register_cpu(r);                                \
    XPU_IF_CUDA(detail::register_cuda(r));                  \
  }

namespace xpu::ops {

// Rows of a [..., N] view (the product of its leading dims); 0 when absent or 0-d.
inline int64_t rows_of(const TensorView& v) {
  if (v.ndim < 1) return 0;
  int64_t rows = 1;
  for (int i = 0; i + 1 < v.ndim; ++i) rows *= v.shape[i];
  return rows;
}

// N of a [..., N] view; 0 when absent or 0-d.
inline int64_t cols_of(const TensorView& v) { return v.ndim < 1 ? 0 : v.shape[v.ndim - 1]; }

}  // namespace xpu::ops
