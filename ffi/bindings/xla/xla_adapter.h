// Helpers that keep every XLA FFI handler a straight line: XLA buffers become
// TensorViews, and a core Status becomes an ffi::Error (never an exception).
#pragma once

#include <optional>
#include <string_view>

#include "xla/ffi/api/ffi.h"
#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::xla_adapter {

namespace ffi = ::xla::ffi;

DType dtype_of(ffi::DataType t);

// XLA buffers are dense row-major on the handler's device.
TensorView view(const ffi::AnyBuffer& b, Device device);
TensorView view(ffi::Result<ffi::AnyBuffer>& b, Device device);
TensorView view(const std::optional<ffi::AnyBuffer>& b, Device device);

ffi::Error to_error(const Status& s);

// Reads the `policy` attribute; unknown names are an error naming the op.
ffi::Error parse_policy_attr(std::string_view op, std::string_view name, ExecContext* ctx);

#if XPURUNTIME_WITH_CUDA
// With XPURUNTIME_COUNT_CAPTURES=1 in the environment, counts CUDA handler calls
// made while XLA captures the stream into a command buffer (CUDA graph): the
// evidence that command buffers really contain our kernels. Off: one branch.
void note_stream_capture(cudaStream_t stream);
#endif

// One handler implementation, `Error impl(void* stream, Device, Ts... binding args)`,
// served on both platforms: the CPU entry has no stream, the CUDA entry takes
// XLA's stream and device ordinal. Each op binds its argument list once.
template <auto Impl>
struct Platforms;
template <typename... Ts, ffi::Error (*Impl)(void*, Device, Ts...)>
struct Platforms<Impl> {
  static ffi::Error cpu(Ts... args) { return Impl(nullptr, {DeviceKind::kCPU, 0}, args...); }
#if XPURUNTIME_WITH_CUDA
  static ffi::Error cuda(cudaStream_t stream, int32_t ordinal, Ts... args) {
    note_stream_capture(stream);
    return Impl(stream, {DeviceKind::kCUDA, ordinal}, args...);
  }
#endif
};

#if XPURUNTIME_WITH_CUDA
inline auto cuda_binding() {
  return ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>();
}
#endif

}  // namespace xpu::xla_adapter

// Defines SYMBOL_cpu and (with CUDA) SYMBOL_cuda for `impl`, whose binding
// arguments are those `signature(binding)` appends. CUDA handlers are
// command-buffer compatible: they neither allocate nor synchronize.
#define XPU_XLA_CPU_HANDLER(symbol, impl, signature)                                   \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol##_cpu, ::xpu::xla_adapter::Platforms<impl>::cpu, \
                                signature(::xla::ffi::Ffi::Bind()))
#if XPURUNTIME_WITH_CUDA
#define XPU_XLA_HANDLERS(symbol, impl, signature)                                        \
  XPU_XLA_CPU_HANDLER(symbol, impl, signature);                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol##_cuda, ::xpu::xla_adapter::Platforms<impl>::cuda, \
                                signature(::xpu::xla_adapter::cuda_binding()),           \
                                {::xla::ffi::Traits::kCmdBufferCompatible})
#define XPU_XLA_TARGET(name, symbol) \
  ::xpu::xla_adapter::Target{name, reinterpret_cast<void*>(symbol##_cpu), reinterpret_cast<void*>(symbol##_cuda)}
#else
#define XPU_XLA_HANDLERS(symbol, impl, signature) XPU_XLA_CPU_HANDLER(symbol, impl, signature)
#define XPU_XLA_TARGET(name, symbol) \
  ::xpu::xla_adapter::Target{name, reinterpret_cast<void*>(symbol##_cpu), nullptr}
#endif
