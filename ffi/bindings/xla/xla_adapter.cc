// Conversions between XLA FFI values and the core's: dtypes, buffers, attributes,
// errors; and the capture counter of the CUDA handlers.
#include "bindings/xla/xla_adapter.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "bindings/xla/xla_targets.h"

namespace xpu::xla_adapter {

namespace {
std::atomic<long long> g_captured_calls{0};

// Reads attribute `it` as a T into `g` when it is one (the FFI's own type test).
// Values are read by name: get() by iterator does not compile in FFI API 0.3.
template <typename T>
bool take_number(const ffi::Dictionary& attrs, const ffi::Dictionary::Iterator& it, GivenType type,
                 GivenAttr* g) {
  if (!attrs.isa<T>(it)) return false;
  auto v = attrs.get<T>(*it);
  if (!v.has_value()) return false;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    set_given_int(g, *v);  // (exactness beyond +-2^53)
  } else {
    g->type = type;
    g->number = static_cast<double>(*v);
  }
  return true;
}

template <typename... Ts>
bool take_any(const ffi::Dictionary& attrs, const ffi::Dictionary::Iterator& it, GivenType type,
              GivenAttr* g) {
  return (take_number<Ts>(attrs, it, type, g) || ...);
}
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

Status given_attrs(const OpSpec& spec, const ffi::Dictionary& attrs, std::vector<GivenAttr>* out) {
  out->clear();
  out->reserve(attrs.size());
  for (auto it = attrs.begin(); it != attrs.end(); ++it) {
    GivenAttr g;
    g.name = *it;
    if (attrs.isa<std::string_view>(it)) {
      auto text = attrs.get<std::string_view>(*it);
      if (text.has_value()) {
        g.type = GivenType::kString;
        g.text = *text;
        out->push_back(g);
        continue;
      }
    }
    if (take_number<bool>(attrs, it, GivenType::kBool, &g) ||
        take_any<int64_t, int32_t, int16_t, int8_t, uint64_t, uint32_t, uint16_t, uint8_t>(
            attrs, it, GivenType::kInt, &g) ||
        take_any<float, double>(attrs, it, GivenType::kFloat, &g)) {
      out->push_back(g);
      continue;
    }
    return InvalidArgument(spec.op, ": attribute '", g.name,
                           "' must be a number, a bool or a string (XLA gave another kind)");
  }
  return Status::Ok();
}

DenseTensor dense(const ffi::AnyBuffer& b, Device device) {
  const auto dims = b.dimensions();
  return DenseTensor{b.untyped_data(), dtype_of(b.element_type()),
                     std::span<const int64_t>(dims.begin(), dims.size()), device, true};
}

}  // namespace xpu::xla_adapter
