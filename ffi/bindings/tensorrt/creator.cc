#include "bindings/tensorrt/creator.h"

#include "bindings/tensorrt/logging.h"
#include "bindings/tensorrt/plugin.h"

namespace xpu::trt {

SpecCreator::SpecCreator(const OpSpec& spec) : spec_(&spec), defaults_(default_config(spec)) {}

nvinfer1::IPluginV3* SpecCreator::createPlugin(const char* name,
                                               const nvinfer1::PluginFieldCollection* fc,
                                               nvinfer1::TensorRTPhase phase) noexcept {
  try {
    PluginConfig config;
    const Status s = parse_fields(*spec_, fc, &config);
    if (!s.ok()) {
      log_error(str_cat(kNamespace, "::", spec_->onnx_type, " createPlugin(",
                        name ? name : "", ", ", phase == nvinfer1::TensorRTPhase::kBUILD ? "build" : "runtime",
                        " phase): ", s.message()));
      return nullptr;
    }
    return new SpecPlugin(std::move(config), name ? name : "");
  } catch (...) {
    log_error(str_cat(kNamespace, "::", spec_->onnx_type, " createPlugin: out of host memory"));
    return nullptr;
  }
}

const nvinfer1::PluginFieldCollection* SpecCreator::getFieldNames() noexcept {
  return defaults_.collection();
}

const char* SpecCreator::getPluginName() const noexcept { return spec_->onnx_type; }
const char* SpecCreator::getPluginVersion() const noexcept { return kVersion; }
const char* SpecCreator::getPluginNamespace() const noexcept { return kNamespace; }

}  // namespace xpu::trt
