#include "xpuruntime/runtime.h"

#include <cstdlib>

#include "xpuruntime/memory/device_pools.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xpu::runtime {

int cuda_device_count() {
#if XPURUNTIME_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear: no driver or no device is not an error here
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

Status allocate(Device device, size_t bytes, void* stream, void** out) {
  *out = nullptr;
  memory::CachingPool* pool = nullptr;
  XPU_RETURN_IF_ERROR(memory::device_pool(device, &pool));
  return pool->allocate(bytes, stream, out);
}

void deallocate(Device device, void* ptr, void* stream) {
  if (!ptr) return;
  memory::CachingPool* pool = nullptr;
  if (!memory::device_pool(device, &pool).ok()) return;
  (void)pool->deallocate(ptr, stream);  // an unknown pointer is the caller's bug; nothing to free
}

Status synchronize(Device device, void* stream) {
#if XPURUNTIME_WITH_CUDA
  if (device.kind == DeviceKind::kCUDA) {
    DeviceGuard guard(device);
    const cudaError_t err = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess)
      return Error(StatusCode::kInternal, "stream synchronize failed: ", cudaGetErrorString(err));
  }
#else
  (void)device;
  (void)stream;
#endif
  return Status::Ok();
}

}  // namespace xpu::runtime
