#include "xpuruntime/runtime.h"

#include <cstdlib>

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

DeviceGuard::DeviceGuard(Device device) {
#if XPURUNTIME_WITH_CUDA
  if (device.kind != DeviceKind::kCUDA) return;
  int current = 0;
  if (cudaGetDevice(&current) == cudaSuccess && current != device.index) {
    previous_ = current;
    cudaSetDevice(device.index);
  }
#else
  (void)device;
#endif
}

DeviceGuard::~DeviceGuard() {
#if XPURUNTIME_WITH_CUDA
  if (previous_ >= 0) cudaSetDevice(previous_);
#endif
}

Status allocate(Device device, size_t bytes, void* stream, void** out) {
  *out = nullptr;
  if (bytes == 0) bytes = 1;  // a valid, unique pointer even for empty tensors
  if (device.kind == DeviceKind::kCPU) {
    *out = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!*out) return Error(StatusCode::kOutOfMemory, "out of host memory allocating ", bytes, " bytes");
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  DeviceGuard guard(device);
  const cudaError_t err = cudaMallocAsync(out, bytes, static_cast<cudaStream_t>(stream));
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return Error(StatusCode::kOutOfMemory, "out of memory on cuda:", device.index, " allocating ",
                 bytes, " bytes");
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Error(StatusCode::kInternal, "cudaMallocAsync failed on cuda:", device.index, ": ",
                 cudaGetErrorString(err));
  }
  return Status::Ok();
#else
  (void)stream;
  return Error(StatusCode::kUnimplemented, "this build of xpuruntime has no CUDA support");
#endif
}

void deallocate(Device device, void* ptr, void* stream) {
  if (!ptr) return;
  if (device.kind == DeviceKind::kCPU) {
    std::free(ptr);
    return;
  }
#if XPURUNTIME_WITH_CUDA
  DeviceGuard guard(device);
  cudaFreeAsync(ptr, static_cast<cudaStream_t>(stream));
#else
  (void)stream;
#endif
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
