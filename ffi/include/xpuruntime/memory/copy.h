// Byte copies, fills and checks between and on devices (xpuruntime.Array.to,
// Buffer.fill / count_not_equal). Stream-ordered on CUDA; a host result (a copy
// to the host, a count) is complete when the call returns.
#pragma once

#include <cstddef>

#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::memory {

Status copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                  void* stream);
Status fill_bytes(void* ptr, Device device, unsigned char value, size_t nbytes, void* stream);
// *count: how many of the bytes differ from `value` (waits for `stream` on CUDA).
Status count_bytes_not_equal(const void* ptr, Device device, unsigned char value, size_t nbytes,
                             void* stream, size_t* count);

}  // namespace xpu::memory
