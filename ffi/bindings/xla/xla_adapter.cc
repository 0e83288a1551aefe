#include "bindings/xla/xla_adapter.h"
#include "bindings/xla/xla_targets.h"

#include <atomic>
#include <cstdlib>
#include <string>

namespace xpu::xla_adapter {

namespace {
std::atomic<long long> g_captured_calls{0};
}  // namespace

long long captured_calls() { return g_captured_calls.load(); }

#if XPURUNTIME_WITH_CUDA
void note_stream_capture(cudaStream_t stream) {
  static const bool counting = [] {
    const char* v = std::getenv("XPURUNTIME_COUNT_CAPTURES");
    return v && v[0] == '1';
  }();
  if (!counting) return;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  if (status == cudaStreamCaptureStatusActive) g_captured_calls.fetch_add(1);
}
#endif

DType dtype_of(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F32: return DType::kF32;
    case ffi::DataType::F16: return DType::kF16;
    case ffi::DataType::BF16: return DType::kBF16;
    case ffi::DataType::F64: return DType::kF64;
    case ffi::DataType::S32: return DType::kI32;
    case ffi::DataType::S64: return DType::kI64;
    case ffi::DataType::U8: return DType::kU8;
    case ffi::DataType::PRED: return DType::kBool;
    default: return DType::kInvalid;
  }
}

TensorView view(const ffi::AnyBuffer& b, Device device) {
  const auto dims = b.dimensions();
  return dense_view(b.untyped_data(), dtype_of(b.element_type()), dims.begin(),
                    static_cast<int>(dims.size()), device);
}

TensorView view(ffi::Result<ffi::AnyBuffer>& b, Device device) { return view(*b, device); }

TensorView view(const std::optional<ffi::AnyBuffer>& b, Device device) {
  return b ? view(*b, device) : TensorView{};
}

ffi::Error to_error(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return ffi::Error::Success();
    case StatusCode::kInvalidArgument: return ffi::Error::InvalidArgument(s.message());
    case StatusCode::kNotFound: return ffi::Error(ffi::ErrorCode::kNotFound, s.message());
    case StatusCode::kUnimplemented: return ffi::Error(ffi::ErrorCode::kUnimplemented, s.message());
    case StatusCode::kOutOfMemory:
      return ffi::Error(ffi::ErrorCode::kResourceExhausted, s.message());
    default: return ffi::Error::Internal(s.message());
  }
}

ffi::Error parse_policy_attr(std::string_view op, std::string_view name, ExecContext* ctx) {
  if (parse_policy(name, &ctx->policy)) return ffi::Error::Success();
  return ffi::Error::InvalidArgument(std::string(op) + ": unknown policy '" + std::string(name) +
                                     "'; expected fast, deterministic or reference");
}

}  // namespace xpu::xla_adapter
