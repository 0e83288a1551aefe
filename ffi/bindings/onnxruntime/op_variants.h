// The ORT registrations of one forward op spec: its schema (inputs and their
// optionality, the kResult outputs, element types from the spec's dtype rules)
// for each float dtype and each combination of the operands' other allowed
// types (labels int32/int64, rope tables f32 or x's dtype).
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
};

// Every variant of a forward spec for one execution provider.
std::vector<OpVariant> variants_of(const OpSpec& spec, DeviceKind device);

}  // namespace xpu::ort
