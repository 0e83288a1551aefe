// CUDA devices: index checks, properties and the current device of the
// calling thread, for the runtime API (xpuruntime.Device). The CPU device needs
// none of them.
#pragma once

#include <cstddef>
#include <string>

#include "xpuruntime/status.h"

namespace xpu::runtime {

// kInvalidArgument naming the visible count when `index` is not a CUDA device.
Status check_cuda_index(int index);

struct DeviceProperties {
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int multiprocessor_count = 0;
  size_t total_memory = 0, free_memory = 0;
  int l2_cache_size = 0;  // bytes
};
Status cuda_device_properties(int index, DeviceProperties* out);

// The calling thread's current CUDA device; -1 without CUDA or on failure.
int cuda_current_device();
Status cuda_set_current_device(int index);

}  // namespace xpu::runtime
