// The kernel registry: (op, direction, device kind, dtype, policy) -> function.
// Each op's entry point validates its arguments, then looks its kernel up here,
// so a missing combination fails with a message listing what does exist.
#pragma once

#include <mutex>
#include <utility>
#include <string>
#include <vector>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu {

enum class Direction : uint8_t { kForward = 0, kBackward = 1 };
constexpr std::string_view direction_name(Direction d) {
  return d == Direction::kForward ? "forward" : "backward";
}

struct KernelKey {
  std::string op;
  Direction direction;
  DeviceKind device;
  DType dtype;
  Policy policy;
  bool operator==(const KernelKey& o) const;
  std::string to_string() const;
};

// Type-erased kernel pointer; each op's entry point knows the real signature.
using AnyKernel = void (*)();

class Registry {
 public:
  // The process-wide registry, with every built-in kernel registered on first use.
  static Registry& global();

  void add(KernelKey key, AnyKernel fn);
  // NotFound names the key and lists the registered keys of the same op. Inside a
  // ValidationOnly scope on the calling thread it finds nothing (see below).
  Status find(const KernelKey& key, AnyKernel* out) const;
  std::vector<KernelKey> keys() const;

  template <typename Fn>
  Status find_typed(const KernelKey& key, Fn** out) const {
    AnyKernel any = nullptr;
    XPU_RETURN_IF_ERROR(find(key, &any));
    *out = reinterpret_cast<Fn*>(any);
    return Status::Ok();
  }

 private:
  struct Entry { KernelKey key; AnyKernel fn; };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// While alive, Registry::find on this thread finds no kernel and records that it
// was asked: each entry point validates its arguments before it looks its kernel
// up, so a call made inside the scope runs the op's checks and launches nothing.
// validate_op (op_spec.h) is built on it; tensors there carry no real data.
class ValidationOnly {
 public:
  ValidationOnly();
  ~ValidationOnly();
  ValidationOnly(const ValidationOnly&) = delete;
  ValidationOnly& operator=(const ValidationOnly&) = delete;
  // Whether a kernel lookup was reached, i.e. the entry point's checks all passed.
  bool reached_lookup() const { return reached_; }

 private:
  friend class Registry;
  ValidationOnly* outer_;
  bool reached_ = false;
};

// Registers one kernel for several policies (a kernel that is already
// deterministic serves `fast` and `deterministic` alike).
template <typename Fn>
void register_kernel(Registry& r, const char* op, Direction dir, DeviceKind dev, DType dt,
                     std::initializer_list<Policy> policies, Fn* fn) {
  for (Policy p : policies) r.add({op, dir, dev, dt, p}, reinterpret_cast<AnyKernel>(fn));
}

// Registers one op's forward<T> and backward<T> for float32, float16 and
// bfloat16 under every policy, for kernel families that are deterministic and
// pick their `reference` path inside the launcher. F32/F16/BF16 are the storage
// types of the device (host::f16 on the CPU, __half on CUDA, ...); `kernels` is
// a generic lambda: `[]<typename T>() { return std::pair{&forward<T>, &backward<T>}; }`.
template <typename F32, typename F16, typename BF16, typename Kernels>
void register_float_family(Registry& r, const char* op, DeviceKind device, Kernels kernels) {
  const auto all = {Policy::kFast, Policy::kDeterministic, Policy::kReference};
  auto one = [&]<typename T>(DType dtype) {
    const auto [forward, backward] = kernels.template operator()<T>();
    register_kernel(r, op, Direction::kForward, device, dtype, all, forward);
    register_kernel(r, op, Direction::kBackward, device, dtype, all, backward);
  };
  one.template operator()<F32>(DType::kF32);
  one.template operator()<F16>(DType::kF16);
  one.template operator()<BF16>(DType::kBF16);
}

}  // namespace xpu
