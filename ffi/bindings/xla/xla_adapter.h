// The XLA FFI adapter: one generic handler body serves every op spec. XLA's
// buffers become TensorViews, XLA's attributes go through the spec's one
// attribute rule, and a core Status becomes an ffi::Error (never an exception).
#pragma once

#include <span>
#include <vector>

#include "xla/ffi/api/ffi.h"
#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#include "xpuruntime/dense_operands.h"
#include "xpuruntime/op_spec.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::xla_adapter {

namespace ffi = ::xla::ffi;

DType dtype_of(ffi::DataType t);

ffi::Error to_error(const Status& s);

// Every attribute of the call as given (name, type, value), for parse_attrs.
// Numbers of any XLA scalar type are read as double; arrays and dictionaries are
// an InvalidArgument naming the op and the attribute. The views into `attrs`
// live as long as the call frame.
Status given_attrs(const OpSpec& spec, const ffi::Dictionary& attrs, std::vector<GivenAttr>* out);

// XLA buffers are dense row-major, of any rank: DenseOperands folds the leading
// axes of a call past kMaxDims (dense_operands.h).
DenseTensor dense(const ffi::AnyBuffer& b, Device device);

// The handler of spec's target: operands are the spec's inputs in order (absent
// optional inputs last, left out), results its outputs in order (those whose
// `present_if` input is absent left out), then, optionally, a uint8 workspace.
// Attributes are the spec's (Python names) plus `policy`.
ffi::Error call_spec(const OpSpec& spec, void* stream, Device device, ffi::RemainingArgs args,
                     ffi::RemainingRets rets, const ffi::Dictionary& attrs);

#if XPURUNTIME_WITH_CUDA
// With XPURUNTIME_COUNT_CAPTURES=1 in the environment, counts CUDA handler calls
// made while XLA captures the stream into a command buffer (CUDA graph): the
// evidence that command buffers really contain our kernels. Off: one branch.
void note_stream_capture(cudaStream_t stream);
#endif

}  // namespace xpu::xla_adapter
