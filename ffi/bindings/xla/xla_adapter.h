// Helpers that keep every XLA FFI handler a straight line: XLA buffers become
// TensorViews, and a core Status becomes an ffi::Error (never an exception).
#pragma once

#include <optional>
#include <string_view>

#include "xla/ffi/api/ffi.h"
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

}  // namespace xpu::xla_adapter
