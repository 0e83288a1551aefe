// One XLA FFI target per op and direction of ffi/ops.def, named
// "xpuruntime_<op>_fwd" / "xpuruntime_<op>_bwd", each a CPU and (with CUDA) a CUDA
// handler. Every handler is the same generic body (call_spec) over its spec; the
// spec is a template argument because XLA handlers are plain C function pointers.
#include <string>

#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"

namespace xpu::ops {
#define XPU_OP(name, onnx)             \
  const OpSpec& name##_forward_spec(); \
  const OpSpec& name##_backward_spec();
#include "ops.def"
#undef XPU_OP
}  // namespace xpu::ops

namespace xpu::xla_adapter {
namespace {

using SpecFn = const OpSpec& (*)();

// Operands, results and attributes are all taken as they come; call_spec maps them.
template <typename B>
auto generic_signature(B binding) {
  return std::move(binding).RemainingArgs().RemainingRets().template Attrs<ffi::Dictionary>();
}

// No C++ exception may cross the FFI boundary (a std::bad_alloc in a vector, say).
template <typename Fn>
ffi::Error guarded(const OpSpec& spec, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string(spec.op) + ": " + e.what());
  } catch (...) {
    return ffi::Error::Internal(std::string(spec.op) + ": unknown C++ exception");
  }
}

template <SpecFn Spec>
struct Handlers {
  static XLA_FFI_Error* cpu(XLA_FFI_CallFrame* frame) {
    static auto* handler =
        generic_signature(ffi::Ffi::Bind())
            .To([](ffi::RemainingArgs args, ffi::RemainingRets rets, ffi::Dictionary attrs) {
              return guarded(Spec(), [&] {
                return call_spec(Spec(), nullptr, {DeviceKind::kCPU, 0}, args, rets, attrs);
              });
            })
            .release();
    return handler->Call(frame);
  }
#if XPURUNTIME_WITH_CUDA
  // Command-buffer compatible: the handler neither allocates nor synchronizes
  // (scratch is a result sized by the frontend).
  static XLA_FFI_Error* cuda(XLA_FFI_CallFrame* frame) {
    static auto* handler =
        generic_signature(
            ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>())
            .To(
                [](cudaStream_t stream, int32_t ordinal, ffi::RemainingArgs args,
                   ffi::RemainingRets rets, ffi::Dictionary attrs) {
                  note_stream_capture(stream);
                  return guarded(Spec(), [&] {
                    return call_spec(Spec(), stream, {DeviceKind::kCUDA, ordinal}, args, rets, attrs);
                  });
                },
                {ffi::Traits::kCmdBufferCompatible})
            .release();
    return handler->Call(frame);
  }
#endif

  static Target target() {
    const OpSpec& spec = Spec();
    Target t;
    t.name = xla_target_name(spec);
    t.cpu = reinterpret_cast<void*>(&cpu);
#if XPURUNTIME_WITH_CUDA
    t.cuda = reinterpret_cast<void*>(&cuda);
#endif
    return t;
  }
};

}  // namespace

TargetList all_targets() {
  TargetList out;
#define XPU_OP(name, onnx)                                           \
  out.push_back(Handlers<&ops::name##_forward_spec>::target());      \
  out.push_back(Handlers<&ops::name##_backward_spec>::target());
#include "ops.def"
#undef XPU_OP
  return out;
}

}  // namespace xpu::xla_adapter
