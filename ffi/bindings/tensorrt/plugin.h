// The one TensorRT plugin: an IPluginV3 over an op spec. Shapes, dtypes,
// workspace and validation all come from the spec and the core; enqueue calls the
// op's entry point through call_op on TensorRT's stream. No method lets an
// exception out: failures are logged (naming the op, the layer and the input)
// and returned as TensorRT's non-zero codes.
#pragma once

#include <NvInferRuntime.h>

#include <memory>
#include <string>

#include "bindings/tensorrt/fields.h"
#include "bindings/tensorrt/signature.h"
#include "xpuruntime/dense_operands.h"

namespace xpu::trt {

inline constexpr const char* kNamespace = "xpuruntime";
inline constexpr const char* kVersion = "1";

class SpecPlugin final : public nvinfer1::IPluginV3,
                         public nvinfer1::IPluginV3OneCore,
                         public nvinfer1::IPluginV3OneBuild,
                         public nvinfer1::IPluginV3OneRuntime {
 public:
  SpecPlugin(PluginConfig config, std::string layer_name);
  SpecPlugin(const SpecPlugin& other);

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  const char* getPluginName() const noexcept override;
  const char* getPluginVersion() const noexcept override { return kVersion; }
  const char* getPluginNamespace() const noexcept override { return kNamespace; }

  // IPluginV3OneBuild
  int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nb_inputs,
                          const nvinfer1::DynamicPluginTensorDesc* out, int32_t nb_outputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* output_types, int32_t nb_outputs,
                             const nvinfer1::DataType* input_types, int32_t nb_inputs) const noexcept override;
  int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                          const nvinfer1::DimsExprs* shape_inputs, int32_t nb_shape_inputs,
                          nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                          nvinfer1::IExprBuilder& builder) noexcept override;
  bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                 int32_t nb_inputs, int32_t nb_outputs) noexcept override;
  int32_t getNbOutputs() const noexcept override;
  size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nb_inputs,
                          const nvinfer1::DynamicPluginTensorDesc* outputs,
                          int32_t nb_outputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nb_inputs,
                        const nvinfer1::PluginTensorDesc* out, int32_t nb_outputs) noexcept override;
  int32_t enqueue(const nvinfer1::PluginTensorDesc* input_desc,
                  const nvinfer1::PluginTensorDesc* output_desc, const void* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override;

 private:
  // Logs `s` (naming the op, the layer and the method) unless ok; 0 or 1 for TensorRT.
  int32_t report(const char* method, const Status& s) const noexcept;
  // Shapes only, as validation sees them (placeholder data, CPU device).
  Status validate(const nvinfer1::Dims* in_dims, const nvinfer1::DataType* in_types, int nb_inputs,
                  const nvinfer1::Dims* out_dims, const nvinfer1::DataType* out_types,
                  int nb_outputs) const;
  // The inputs of one call as views (leading axes past kMaxDims folded); `data`
  // nullptr: shapes only (placeholder data).
  Status set_inputs(const nvinfer1::Dims* in_dims, const nvinfer1::DataType* in_types, int nb_inputs,
                    const void* const* data, Device device, DenseOperands* out) const;
  int64_t workspace_at(const nvinfer1::Dims* in_dims, const nvinfer1::DataType* in_types,
                       int nb_inputs) const;

  PluginConfig config_;
  Signature signature_;
  std::string layer_name_;
  int nb_inputs_;  // as last configured (enqueue is not told)
  std::unique_ptr<FieldList> serialized_;
};

}  // namespace xpu::trt
