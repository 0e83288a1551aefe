// What a kernel needs besides its tensors: where to run and how.
#pragma once

#include <string_view>

#include "xpuruntime/tensor_view.h"

namespace xpu {

// Kernel policies of OPS.md. `fast` may use any launch shape; `deterministic`
// must give bitwise-identical results run to run; `reference` is the plain
// implementation used to cross-check the others.
enum class Policy : uint8_t { kFast = 0, kDeterministic = 1, kReference = 2 };

constexpr std::string_view policy_name(Policy p) {
  switch (p) {
    case Policy::kFast: return "fast";
    case Policy::kDeterministic: return "deterministic";
    default: return "reference";
  }
}
bool parse_policy(std::string_view name, Policy* out);

struct ExecContext {
  void* stream = nullptr;  // cudaStream_t for CUDA kernels; unused on the CPU
  Policy policy = Policy::kFast;
};

}  // namespace xpu
