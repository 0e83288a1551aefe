// Helpers for the op specs of ffi/kernels/<family>/spec.cc: row counts for the
// workspace functions (read from shapes only: the views carry no data there) and
// the CUDA half of each op's kernel registration.
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
