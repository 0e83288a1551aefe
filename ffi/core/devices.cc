#include "xpuruntime/devices.h"

#include "core/cuda_error.h"
#include "xpuruntime/runtime.h"

namespace xpu::runtime {

Status check_cuda_index(int index) {
  const int n = cuda_device_count();
  if (index < 0 || index >= n)
    return InvalidArgument("invalid CUDA device index ", index, " (", n, " CUDA device", n == 1 ? "" : "s",
                           " visible)");
  return Status::Ok();
}

#if XPURUNTIME_WITH_CUDA
using detail::cuda_status;

Status cuda_device_properties(int index, DeviceProperties* out) {
  XPU_RETURN_IF_ERROR(check_cuda_index(index));
  cudaDeviceProp prop{};
  XPU_RETURN_IF_ERROR(cuda_status(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties"));
  size_t free_b = 0, total = 0;
  {
    DeviceGuard guard({DeviceKind::kCUDA, index});
    XPU_RETURN_IF_ERROR(cuda_status(cudaMemGetInfo(&free_b, &total), "cudaMemGetInfo"));
  }
  out->name = prop.name;
  out->compute_major = prop.major;
  out->compute_minor = prop.minor;
  out->multiprocessor_count = prop.multiProcessorCount;
  out->total_memory = prop.totalGlobalMem;
  out->free_memory = free_b;
  out->l2_cache_size = prop.l2CacheSize;
  return Status::Ok();
}

int cuda_current_device() {
  int d = 0;
  if (cudaGetDevice(&d) != cudaSuccess) {
    detail::clear_cuda_error();
    return -1;
  }
  return d;
}

Status cuda_set_current_device(int index) {
  XPU_RETURN_IF_ERROR(check_cuda_index(index));
  return cuda_status(cudaSetDevice(index), "cudaSetDevice");
}

#else  // !XPURUNTIME_WITH_CUDA

Status cuda_device_properties(int index, DeviceProperties*) { return check_cuda_index(index); }
int cuda_current_device() { return -1; }
Status cuda_set_current_device(int index) { return check_cuda_index(index); }

#endif

}  // namespace xpu::runtime
