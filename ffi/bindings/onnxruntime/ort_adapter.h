// The ONNX Runtime side of every op: a table-driven OrtCustomOp whose callbacks
// never let a C++ exception out, and a KernelCall that turns ORT values into
// TensorViews. Each op file only declares its schema and a compute function.
#pragma once

#include <onnxruntime_c_api.h>

#include <memory>
#include <string>
#include <vector>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::ort {

extern const OrtApi* g_api;  // set by RegisterCustomOps

// One call of a kernel: inputs and outputs as views, on the op's device and stream.
class KernelCall {
 public:
  KernelCall(OrtKernelContext* ctx, Device device);
  size_t input_count() const;
  size_t output_count() const;
  // An absent optional input gives a view with present() == false.
  Status input(size_t i, TensorView* out) const;
  Status output(size_t i, const int64_t* shape, int ndim, TensorView* out) const;
  void* stream() const;
  Device device() const { return device_; }

 private:
  OrtKernelContext* ctx_;
  Device device_;
};

// Attribute readers with defaults (an absent attribute takes the OPS.md default).
float attr_float(const OrtKernelInfo* info, const char* name, float fallback);
int64_t attr_int(const OrtKernelInfo* info, const char* name, int64_t fallback);
std::string attr_string(const OrtKernelInfo* info, const char* name, const std::string& fallback);

// The policy for ORT sessions: the `policy` attribute when set, else fast.
Policy attr_policy(const OrtKernelInfo* info);

OrtStatus* to_ort_status(const Status& s);

struct OpSchema {
  const char* name;      // ONNX op type in domain "xpuruntime"
  DeviceKind device;     // CPU or CUDA execution provider
  std::vector<ONNXTensorElementDataType> inputs, outputs;
  std::vector<bool> input_optional, output_optional;  // empty: all required
  // Reads attributes once per node; returns the kernel state.
  Status (*create)(const OrtKernelInfo* info, void** state);
  Status (*compute)(void* state, KernelCall& call);
  void (*destroy)(void* state);
};

// A schema whose per-node state is a plain struct S: `Read` fills it once from the
// node's attributes, `Run` computes with it; creation and destruction are generated
// here so that op files hold only what is particular to the op.
template <typename S, Status (*Read)(const OrtKernelInfo*, S*), Status (*Run)(const S&, KernelCall&)>
OpSchema typed_schema(const char* name, DeviceKind device,
                      std::vector<ONNXTensorElementDataType> inputs,
                      std::vector<ONNXTensorElementDataType> outputs,
                      std::vector<bool> input_optional = {}, std::vector<bool> output_optional = {}) {
  return OpSchema{
      name, device, std::move(inputs), std::move(outputs), std::move(input_optional),
      std::move(output_optional),
      [](const OrtKernelInfo* info, void** state) -> Status {
        auto s = std::make_unique<S>();
        XPU_RETURN_IF_ERROR(Read(info, s.get()));
        *state = s.release();
        return Status::Ok();
      },
      [](void* state, KernelCall& call) { return Run(*static_cast<const S*>(state), call); },
      [](void* state) { delete static_cast<S*>(state); }};
}

// An OrtCustomOp built from a schema. Lives as long as the library.
struct CustomOp : OrtCustomOp {
  explicit CustomOp(OpSchema schema);
  OpSchema schema;
};

// Builds the registrations of one op for T in {float, float16, bfloat16}:
// `make(T)` returns the schema with that element type filled in.
template <typename MakeSchema>
void add_float_variants(std::vector<CustomOp*>& out, MakeSchema make) {
  for (auto t : {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
                 ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16}) {
    out.push_back(new CustomOp(make(t, DeviceKind::kCPU)));
#if XPURUNTIME_WITH_CUDA
    out.push_back(new CustomOp(make(t, DeviceKind::kCUDA)));
#endif
  }
}

}  // namespace xpu::ort
