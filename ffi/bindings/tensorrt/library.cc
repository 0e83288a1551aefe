// Entry points of the TensorRT plugin library: one creator per forward op spec
// (so every op of ffi/ops.def, with nothing listed here). Nothing but
// getCreators and setLoggerFinder is exported.
#include <vector>

#include "bindings/tensorrt/creator.h"
#include "bindings/tensorrt/logging.h"

namespace xpu::trt {
namespace {

const std::vector<nvinfer1::IPluginCreatorInterface*>& creators() {
  static const std::vector<nvinfer1::IPluginCreatorInterface*> list = [] {
    std::vector<nvinfer1::IPluginCreatorInterface*> v;  // leaked: TensorRT holds them until exit
    for (const OpSpec* spec : all_specs())
      if (spec->direction == Direction::kForward) v.push_back(new SpecCreator(*spec));
    return v;
  }();
  return list;
}

}  // namespace
}  // namespace xpu::trt

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(
    nvinfer1::ILoggerFinder* finder) noexcept {
  xpu::trt::set_logger_finder(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const*
getCreators(int32_t& nb_creators) noexcept {
  try {
    const auto& list = xpu::trt::creators();
    nb_creators = static_cast<int32_t>(list.size());
    return list.data();
  } catch (...) {
    xpu::trt::log_error("xpuruntime: could not create the plugin creators");
    nb_creators = 0;
    return nullptr;
  }
}
