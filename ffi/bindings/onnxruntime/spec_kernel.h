// The one OrtCustomOp of the library: generic over the op spec, registered once
// per OpVariant. Its kernel reads a node's attributes when ORT creates it and runs
// the op through the spec (infer_outputs, workspace_bytes, call_op). Its callbacks
// never let a C++ exception out.
#pragma once

#include <onnxruntime_c_api.h>

#include "bindings/onnxruntime/op_variants.h"

namespace xpu::ort {

struct SpecOp : OrtCustomOp {
  explicit SpecOp(OpVariant variant);
  OpVariant variant;
};

}  // namespace xpu::ort
