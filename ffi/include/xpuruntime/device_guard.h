// DeviceGuard: makes a tensor's CUDA device current for the calling thread while
// alive and restores the previous one, so that an op on cuda:1 works whichever
// device the caller had current. A no-op for CPU devices and in a CPU-only build.
#pragma once

#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu {

class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

  // Ok, or why the device could not be made current (a bad index, no driver).
  const Status& status() const { return status_; }

 private:
  int previous_ = -1;
  Status status_;
};

}  // namespace xpu
