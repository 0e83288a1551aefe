// The XLA FFI targets this build provides (one per op and direction of ffi/ops.def),
// gathered for registration from Python.
#pragma once

#include <string>
#include <vector>

namespace xpu::xla_adapter {

struct Target {
  std::string name;      // the custom-call target name, identical on every platform
  void* cpu = nullptr;   // XLA_FFI_Handler* for platform "cpu"
  void* cuda = nullptr;  // XLA_FFI_Handler* for platform "CUDA", or null without CUDA
};
using TargetList = std::vector<Target>;

TargetList all_targets();

// CUDA handler calls seen during stream capture (0 unless XPURUNTIME_COUNT_CAPTURES=1).
long long captured_calls();

}  // namespace xpu::xla_adapter
