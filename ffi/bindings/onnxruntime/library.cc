// Entry point of the ONNX Runtime custom-op library: registers every op in the
// `xpuruntime` domain. Nothing but RegisterCustomOps is exported.
#include <mutex>
#include <vector>

#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
void add_rms_norm(std::vector<CustomOp*>& out);
void add_layer_norm(std::vector<CustomOp*>& out);
void add_softmax(std::vector<CustomOp*>& out);
void add_glu(std::vector<CustomOp*>& out);
void add_rope(std::vector<CustomOp*>& out);
void add_cross_entropy(std::vector<CustomOp*>& out);

namespace {
const std::vector<CustomOp*>& all_ops() {
  static const std::vector<CustomOp*> ops = [] {
    std::vector<CustomOp*> v;  // intentionally leaked: ORT may use them until exit
    add_rms_norm(v);
    add_layer_norm(v);
    add_softmax(v);
    add_glu(v);  // SwiGLU, GeGLU
    add_rope(v);
    add_cross_entropy(v);
    return v;
  }();
  return ops;
}
}  // namespace
}  // namespace xpu::ort

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  using namespace xpu::ort;
  try {
    const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
    if (!api) return nullptr;  // cannot even create a status with an unknown API
    g_api = api;
    OrtCustomOpDomain* domain = nullptr;
    if (OrtStatus* st = api->CreateCustomOpDomain("xpuruntime", &domain)) return st;
    for (CustomOp* op : all_ops())
      if (OrtStatus* st = api->CustomOpDomain_Add(domain, op)) return st;
    return api->AddCustomOpDomain(options, domain);
  } catch (const std::exception& e) {
    return g_api ? g_api->CreateStatus(ORT_FAIL, e.what()) : nullptr;
  }
}
