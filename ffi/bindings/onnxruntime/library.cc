// Entry point of the ONNX Runtime custom-op library: registers, in the
// `xpuruntime` domain, every forward op of ffi/ops.def (through all_specs) for the
// CPU and, in a CUDA build, the CUDA execution provider. Nothing but
// RegisterCustomOps is exported.
#include <string>
#include <vector>

#include "bindings/onnxruntime/spec_kernel.h"
#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
namespace {

const std::vector<SpecOp*>& all_ops() {
  static const std::vector<SpecOp*> ops = [] {
    std::vector<SpecOp*> v;  // intentionally leaked: ORT may use them until exit
    for (const OpSpec* spec : all_specs()) {
      if (spec->direction != Direction::kForward || !spec->onnx_type) continue;
      for (DeviceKind device : {DeviceKind::kCPU, DeviceKind::kCUDA}) {
        if (device == DeviceKind::kCUDA && !XPURUNTIME_WITH_CUDA) continue;
        for (OpVariant& variant : variants_of(*spec, device)) v.push_back(new SpecOp(std::move(variant)));
      }
    }
    return v;
  }();
  return ops;
}

// An ORT too old for kApiVersion answers nullptr to GetApi(kApiVersion): the
// error is created through the oldest API it does serve (CreateStatus is in all).
OrtStatus* api_missing(const OrtApiBase* base) {
  for (uint32_t v = 1; v < kApiVersion; ++v) {
    const OrtApi* api = base->GetApi(v);
    if (!api) continue;
    const char* have = base->GetVersionString ? base->GetVersionString() : "unknown";
    const std::string msg =
        str_cat("xpuruntime: this custom-op library needs ONNX Runtime API version ", kApiVersion,
                " (onnxruntime 1.", kApiVersion, " or newer); the loaded ONNX Runtime is ", have);
    return api->CreateStatus(ORT_FAIL, msg.c_str());
  }
  return nullptr;  // no API at all: nothing can carry an error
}

}  // namespace
}  // namespace xpu::ort

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  using namespace xpu::ort;
  if (!api_base) return nullptr;
  const OrtApi* api = api_base->GetApi(kApiVersion);
  if (!api) return api_missing(api_base);
  g_api = api;
  try {
    OrtCustomOpDomain* domain = nullptr;
    if (OrtStatus* st = api->CreateCustomOpDomain("xpuruntime", &domain)) return st;
    for (SpecOp* op : all_ops())
      if (OrtStatus* st = api->CustomOpDomain_Add(domain, op)) return st;
    return api->AddCustomOpDomain(options, domain);
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, xpu::str_cat("xpuruntime: ", e.what()).c_str());
  } catch (...) {
    return api->CreateStatus(ORT_FAIL, "xpuruntime: unknown error registering custom ops");
  }
}
