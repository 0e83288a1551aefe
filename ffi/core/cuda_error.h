// CUDA results as Status, for the runtime's own CUDA calls. Every failure
// clears the thread's last CUDA error so that no unrelated later check sees it.
// Internal to ffi/core.
#pragma once

#include "xpuruntime/status.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xpu::detail {

#if XPURUNTIME_WITH_CUDA
inline void clear_cuda_error() { (void)cudaGetLastError(); }

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  clear_cuda_error();
  return Error(StatusCode::kInternal, what, " failed: ", cudaGetErrorString(err));
}
#endif

inline Status no_cuda(const char* what) {
  return Error(StatusCode::kUnimplemented, what, ": this build of xpuruntime has no CUDA support");
}

}  // namespace xpu::detail
