// Status: the only way errors leave the core. No C++ exception crosses a C ABI
// (XLA FFI, ONNX Runtime, TensorRT, nanobind); each adapter maps a Status to its
// framework's error type, so the message text is identical everywhere.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace xpu {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // wrong shape, dtype, layout, attribute
  kNotFound = 2,         // no kernel registered for a key
  kUnimplemented = 3,
  kOutOfMemory = 4,
  kInternal = 5,         // CUDA launch failure, unexpected state
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Message building without iostreams: std::ostream's locale machinery is
// avoided on purpose (a module carrying its own copy of it crashed when the
// host process had changed the global locale).
namespace detail {
inline void append(std::string& s, std::string_view v) { s.append(v); }
inline void append(std::string& s, const char* v) { s.append(v); }
inline void append(std::string& s, const std::string& v) { s.append(v); }
inline void append(std::string& s, char c) { s.push_back(c); }
template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, char>)
inline void append(std::string& s, T v) {
  s.append(std::to_string(v));
}
template <typename T>
  requires std::is_floating_point_v<T>
inline void append(std::string& s, T v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(v));
  s.append(buf);
}
}  // namespace detail

// Concatenates strings, characters and numbers: str_cat("rms_norm: ", n, " rows").
template <typename... Parts>
std::string str_cat(const Parts&... parts) {
  std::string s;
  (detail::append(s, parts), ...);
  return s;
}

// Builds a message from parts: Error(kInvalidArgument, "rms_norm: ", ...).
template <typename... Parts>
Status Error(StatusCode code, const Parts&... parts) {
  return Status(code, str_cat(parts...));
}

template <typename... Parts>
Status InvalidArgument(const Parts&... parts) {
  return Error(StatusCode::kInvalidArgument, parts...);
}

}  // namespace xpu

// Returns early from the enclosing function when `expr` is not ok.
#define XPU_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::xpu::Status _xpu_status = (expr);    \
    if (!_xpu_status.ok()) return _xpu_status; \
  } while (0)
