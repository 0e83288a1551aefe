// The ORT registrations of one forward op spec: its schema (inputs and their
// optionality, the kResult outputs, element types) for every combination of the
// dtypes its inputs may have in some call. A combination that breaks the spec's
// dtype rules (SwiGLU's gate float32 and up float16) is registered too, so that
// ORT finds a kernel for the node and its creation fails with the core's error
// naming the op and the input (without it ORT says only "no kernel def matches").
#pragma once

#include <onnxruntime_c_api.h>

#include <vector>

#include "xpuruntime/op_spec.h"

namespace xpu::ort {

struct OpVariant {
  const OpSpec* spec = nullptr;
  DeviceKind device = DeviceKind::kCPU;  // the execution provider it registers for
  std::vector<ONNXTensorElementDataType> inputs;  // one per spec input
  std::vector<bool> input_optional;
  std::vector<ONNXTensorElementDataType> outputs;  // one per kResult output, in order
  std::vector<bool> output_optional;
  std::vector<size_t> output_index;  // ONNX output k is spec output output_index[k]
  Status dtype_error;  // not ok: a combination the op refuses (check_dtypes' error)
};

// Every variant of a forward spec for one execution provider.
std::vector<OpVariant> variants_of(const OpSpec& spec, DeviceKind device);

}  // namespace xpu::ort
