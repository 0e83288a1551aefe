// Plugin fields <-> the op's attributes. Fields are the spec's attributes under
// their ONNX names plus `policy` and the `has_<input>` declarations
// (signature.h); their values are checked by the core's one attribute rule
// (parse_attrs), so a bad field reads as it does in every other frontend.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "xpuruntime/op_spec.h"

namespace xpu::trt {

// Everything a plugin is created from (and serialized as).
struct PluginConfig {
  const OpSpec* spec = nullptr;
  AttrValues attrs;
  Policy policy = Policy::kFast;
  std::vector<bool> declared;  // aligned with declared_inputs(*spec)
};

// The defaults: what an empty field collection gives.
PluginConfig default_config(const OpSpec& spec);

// Reads a field collection (from the user, the ONNX parser or a serialized
// engine). A field of a type that cannot hold its attribute, of a length other
// than one number, with no data, unknown, given twice, or out of the attribute's
// range is an InvalidArgument naming the op and the field; so is a missing field
// whose attribute has no default (the spec's default lies outside its range).
Status parse_fields(const OpSpec& spec, const nvinfer1::PluginFieldCollection* fc,
                    PluginConfig* out);

// A field collection that owns its data: the creator's field names (with the
// defaults as values) and a plugin's fields to serialize.
class FieldList {
 public:
  explicit FieldList(const PluginConfig& config);
  FieldList(const FieldList&) = delete;
  FieldList& operator=(const FieldList&) = delete;
  const nvinfer1::PluginFieldCollection* collection() const { return &collection_; }

 private:
  union Number {
    float f32;
    int32_t i32;
    int64_t i64;
  };
  std::vector<std::string> names_;
  std::vector<std::string> texts_;
  std::vector<Number> numbers_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

}  // namespace xpu::trt
