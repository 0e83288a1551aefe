// A node's attributes as ORT stored them, checked by the core's one attribute
// rule (parse_attrs), once per node when ORT creates its kernel.
#pragma once

#include <onnxruntime_c_api.h>

#include <string>

#include "xpuruntime/op_spec.h"

namespace xpu::ort {

struct NodeAttributes {
  std::string label;  // "RMSNorm node 'norm1'", the start of every error of the node
  AttrValues values;  // index-aligned with spec.attrs
  Policy policy = Policy::kFast;
};

// Reads every attribute the spec names (ONNX names, the Python keyword where it
// differs, and `policy`) with the type the model gave it, so that a wrong type is
// an error and not a default; without `policy`, XPURUNTIME_POLICY or fast. The
// KernelInfo API cannot list a node's attribute names: other unknown names are
// found by xpuruntime.interop.onnxruntime.check_model.
Status read_node_attributes(const OrtKernelInfo* info, const OpSpec& spec, NodeAttributes* out);

}  // namespace xpu::ort
