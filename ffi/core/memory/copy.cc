#include "xpuruntime/memory/copy.h"

#include <cstring>
#include <vector>

#include "core/cuda_error.h"
#include "xpuruntime/runtime.h"

namespace xpu::memory {

#if XPURUNTIME_WITH_CUDA
using detail::cuda_status;
#else
using detail::no_cuda;
#endif

Status copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                  void* stream) {
  if (nbytes == 0) return Status::Ok();
  if (dst_device.kind == DeviceKind::kCPU && src_device.kind == DeviceKind::kCPU) {
    std::memmove(dst, src, nbytes);
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  runtime::DeviceGuard guard(dst_device.kind == DeviceKind::kCUDA ? dst_device : src_device);
  auto s = static_cast<cudaStream_t>(stream);
  XPU_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s), "cudaMemcpyAsync"));
  // A host destination is read by host code right away: wait for the copy.
  if (dst_device.kind == DeviceKind::kCPU)
    XPU_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(s), "cudaStreamSynchronize"));
  return Status::Ok();
#else
  return no_cuda("copy");
#endif
}

Status fill_bytes(void* ptr, Device device, unsigned char value, size_t nbytes, void* stream) {
  if (device.kind == DeviceKind::kCPU) {
    std::memset(ptr, value, nbytes);
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  runtime::DeviceGuard guard(device);
  return cuda_status(cudaMemsetAsync(ptr, value, nbytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
#else
  return no_cuda("fill");
#endif
}

Status count_bytes_not_equal(const void* ptr, Device device, unsigned char value, size_t nbytes,
                             void* stream, size_t* count) {
  *count = 0;
  auto tally = [&](const unsigned char* p) {
    for (size_t i = 0; i < nbytes; ++i) *count += p[i] != value;
  };
  if (device.kind == DeviceKind::kCPU) {
    tally(static_cast<const unsigned char*>(ptr));
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  std::vector<unsigned char> host(nbytes);
  XPU_RETURN_IF_ERROR(copy_bytes(host.data(), {DeviceKind::kCPU, 0}, ptr, device, nbytes, stream));
  tally(host.data());
  return Status::Ok();
#else
  return no_cuda("verify");
#endif
}

}  // namespace xpu::memory
