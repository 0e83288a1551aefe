#include "xpuruntime/device_guard.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xpu {

DeviceGuard::DeviceGuard(Device device) {
#if XPURUNTIME_WITH_CUDA
  if (device.kind != DeviceKind::kCUDA) return;
  int current = 0;
  cudaError_t err = cudaGetDevice(&current);
  if (err == cudaSuccess && current == device.index) return;
  if (err == cudaSuccess) err = cudaSetDevice(device.index);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: the caller reports it
    status_ = Error(StatusCode::kInvalidArgument, "cannot make cuda:", device.index,
                    " the current device: ", cudaGetErrorString(err));
    return;
  }
  previous_ = current;
#else
  (void)device;
#endif
}

DeviceGuard::~DeviceGuard() {
#if XPURUNTIME_WITH_CUDA
  if (previous_ >= 0 && cudaSetDevice(previous_) != cudaSuccess) cudaGetLastError();
#endif
}

}  // namespace xpu
