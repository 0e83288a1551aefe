// ONNX Runtime glue shared by the library: the API table, status conversion in
// both directions, element types, and KernelCall, which turns one compute call's
// OrtValues into dense tensors (on the device ORT placed them) and back.
#pragma once

#include <onnxruntime_c_api.h>

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "xpuruntime/dense_operands.h"
#include "xpuruntime/status.h"

namespace xpu::ort {

// The ORT API version this library is written against: KernelInfo_GetNodeName and
// KernelContext_GetAllocator (15), CreateKernelV2 / KernelComputeV2 (16). Only
// functions of this version or older may be called through g_api.
inline constexpr uint32_t kApiVersion = 16;

extern const OrtApi* g_api;  // set by RegisterCustomOps

// Converts an OrtStatus into a Status (kInternal, ORT's message) and releases it.
Status from_ort(OrtStatus* st);
OrtStatus* to_ort_status(const Status& s);

DType dtype_of(ONNXTensorElementDataType t);
ONNXTensorElementDataType onnx_type_of(DType t);  // UNDEFINED when ORT has none

// One compute call. Inputs and outputs keep ORT's dense row-major layout; memory
// that the op needs and ORT does not hold (workspace, outputs the node leaves out)
// comes from the EP's allocator of the call's device and is freed at the end.
class KernelCall {
 public:
  explicit KernelCall(OrtKernelContext* ctx) : ctx_(ctx) {}
  ~KernelCall();
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;

  // Input i (absent when the node has no input i or leaves it empty). Its shape
  // lives in this call.
  Status input(size_t i, DenseTensor* out);
  // Node output i of this shape; *data stays nullptr when the node has no output i.
  Status output(size_t i, std::span<const int64_t> shape, void** data);
  // `bytes` of scratch on the device of the inputs, valid until the call ends.
  Status scratch(int64_t bytes, void** data);
  // The stream ORT runs this node on (nullptr on the CPU).
  void* stream(Device device) const;

 private:
  OrtKernelContext* ctx_;
  const OrtMemoryInfo* memory_ = nullptr;  // of the first input: the call's device
  std::deque<std::vector<int64_t>> shapes_;  // stable: inputs' shapes point here
  OrtAllocator* allocator_ = nullptr;
  std::vector<void*> scratch_;
};

}  // namespace xpu::ort
