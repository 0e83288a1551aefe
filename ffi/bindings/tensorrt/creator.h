// The one TensorRT plugin creator, over an op's forward spec: name = ONNX op
// type, version "1", namespace "xpuruntime", fields = the spec's attributes
// (ONNX names, OPS.md defaults), `policy` and the `has_<input>` declarations.
#pragma once

#include <NvInferRuntime.h>

#include "bindings/tensorrt/fields.h"

namespace xpu::trt {

class SpecCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  explicit SpecCreator(const OpSpec& spec);

  // nullptr (and an error logged) for fields the op does not take.
  nvinfer1::IPluginV3* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;
  const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override;
  const char* getPluginName() const noexcept override;
  const char* getPluginVersion() const noexcept override;
  const char* getPluginNamespace() const noexcept override;

 private:
  const OpSpec* spec_;
  FieldList defaults_;
};

}  // namespace xpu::trt
