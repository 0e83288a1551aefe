// Minimal device runtime used by the native frontend: device discovery, a
// device guard and stream-ordered allocation of op outputs.
#pragma once

#include <cstddef>

#include "xpuruntime/device_guard.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::runtime {

// Number of usable CUDA devices; 0 without a driver, a GPU, or CUDA in this build.
int cuda_device_count();

// Makes `device` current for the calling thread while alive (device_guard.h).
using DeviceGuard = ::xpu::DeviceGuard;

// Served by the device's caching pool (memory/pool.h).
// Stream-ordered: the memory is usable by work queued on `stream` after this
// call, and released after the work queued on `stream` before deallocate.
Status allocate(Device device, size_t bytes, void* stream, void** out);
void deallocate(Device device, void* ptr, void* stream);

// Blocks until the work queued on `stream` is done (no-op on the CPU).
Status synchronize(Device device, void* stream);

}  // namespace xpu::runtime
