// The process's pools: one per device and one of page-locked host memory.
// Created on first use and alive for the process (never destroyed, so that
// exit does not race CUDA's own teardown).
#pragma once

#include "xpuruntime/memory/pool.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::memory {

// The pool of one device. kInvalidArgument for an index that does not exist.
Status device_pool(Device device, CachingPool** out);
// Synchronizes `stream` and retires it from every pool that exists (each CUDA
// device's and the pinned one). Call before destroying a stream.
void retire_stream_everywhere(void* stream);
// Page-locked host memory when CUDA has a device, else the CPU device's pool.
Status pinned_pool(CachingPool** out, bool* is_pinned);

}  // namespace xpu::memory
