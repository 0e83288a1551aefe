// Status: the only way errors leave the core. No C++ exception crosses a C ABI
// (XLA FFI, ONNX Runtime, TensorRT, nanobind); each adapter maps a Status to its
// framework's error type, so the message text is identical everywhere.
#pragma once

#include <sstream>
#include <string>
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

// Builds a message from streamable parts: Error(kInvalidArgument, "rms_norm: ", ...).
template <typename... Parts>
Status Error(StatusCode code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return Status(code, os.str());
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
