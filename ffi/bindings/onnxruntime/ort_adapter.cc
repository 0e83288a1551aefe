#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {

const OrtApi* g_api = nullptr;

Status from_ort(OrtStatus* st) {
  if (!st) return Status::Ok();
  Status s(StatusCode::kInternal, g_api->GetErrorMessage(st));
  g_api->ReleaseStatus(st);
  return s;
}

OrtStatus* to_ort_status(const Status& s) {
  if (s.ok()) return nullptr;
  const OrtErrorCode code = s.code() == StatusCode::kInvalidArgument ? ORT_INVALID_ARGUMENT
                            : s.code() == StatusCode::kNotFound     ? ORT_NOT_IMPLEMENTED
                                                                    : ORT_FAIL;
  return g_api->CreateStatus(code, s.message().c_str());
}

namespace {

struct TypePair {
  ONNXTensorElementDataType onnx;
  DType dtype;
};
constexpr TypePair kTypes[] = {
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, DType::kF32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, DType::kF16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, DType::kBF16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, DType::kF64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, DType::kI32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, DType::kI64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, DType::kU8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, DType::kBool},
};

Status device_of(const OrtMemoryInfo* memory, Device* out) {
  OrtMemoryInfoDeviceType type = OrtMemoryInfoDeviceType_CPU;
  g_api->MemoryInfoGetDeviceType(memory, &type);
  int id = 0;
  XPU_RETURN_IF_ERROR(from_ort(g_api->MemoryInfoGetId(memory, &id)));
  if (type == OrtMemoryInfoDeviceType_CPU) {
    *out = {DeviceKind::kCPU, 0};
  } else if (type == OrtMemoryInfoDeviceType_GPU) {
    *out = {DeviceKind::kCUDA, id};
  } else {
    return InvalidArgument("xpuruntime: a tensor is on an ORT device of type ",
                           static_cast<int>(type), ", neither CPU nor GPU");
  }
  return Status::Ok();
}

// Element type and shape of a tensor value.
Status type_and_shape(const OrtValue* value, ONNXTensorElementDataType* type,
                      std::vector<int64_t>* shape) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->GetTensorTypeAndShape(value, &info)));
  size_t ndim = 0;
  Status s = from_ort(g_api->GetTensorElementType(info, type));
  if (s.ok()) s = from_ort(g_api->GetDimensionsCount(info, &ndim));
  if (s.ok()) {
    shape->assign(ndim, 0);
    s = from_ort(g_api->GetDimensions(info, shape->data(), ndim));
  }
  g_api->ReleaseTensorTypeAndShapeInfo(info);
  return s;
}

}  // namespace

DType dtype_of(ONNXTensorElementDataType t) {
  for (const TypePair& p : kTypes)
    if (p.onnx == t) return p.dtype;
  return DType::kInvalid;
}

ONNXTensorElementDataType onnx_type_of(DType t) {
  for (const TypePair& p : kTypes)
    if (p.dtype == t) return p.onnx;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

KernelCall::~KernelCall() {
  for (void* p : scratch_) allocator_->Free(allocator_, p);
  if (allocator_) g_api->ReleaseAllocator(allocator_);
}

Status KernelCall::input(size_t i, DenseTensor* out) {
  *out = DenseTensor{};
  size_t count = 0;
  XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetInputCount(ctx_, &count)));
  if (i >= count) return Status::Ok();
  const OrtValue* value = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetInput(ctx_, i, &value)));
  if (!value) return Status::Ok();  // an optional input left empty
  ONNXTensorElementDataType type;
  std::vector<int64_t>& shape = shapes_.emplace_back();
  XPU_RETURN_IF_ERROR(type_and_shape(value, &type, &shape));
  const OrtMemoryInfo* memory = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->GetTensorMemoryInfo(value, &memory)));
  XPU_RETURN_IF_ERROR(device_of(memory, &out->device));
  if (!memory_) memory_ = memory;
  XPU_RETURN_IF_ERROR(
      from_ort(g_api->GetTensorMutableData(const_cast<OrtValue*>(value), &out->data)));
  out->dtype = dtype_of(type);
  out->shape = shape;
  out->present = true;
  return Status::Ok();
}

Status KernelCall::output(size_t i, std::span<const int64_t> shape, void** data) {
  *data = nullptr;
  size_t count = 0;
  XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetOutputCount(ctx_, &count)));
  if (i >= count) return Status::Ok();
  OrtValue* value = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(
      g_api->KernelContext_GetOutput(ctx_, i, shape.data(), shape.size(), &value)));
  if (!value) return Status::Ok();  // an optional output left empty
  return from_ort(g_api->GetTensorMutableData(value, data));
}

Status KernelCall::scratch(int64_t bytes, void** data) {
  *data = nullptr;
  if (bytes <= 0) return Status::Ok();
  if (!memory_) return Error(StatusCode::kInternal, "xpuruntime: scratch memory before any input");
  if (!allocator_)
    XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetAllocator(ctx_, memory_, &allocator_)));
  *data = allocator_->Alloc(allocator_, static_cast<size_t>(bytes));
  if (!*data)
    return Error(StatusCode::kOutOfMemory, "xpuruntime: ONNX Runtime could not allocate ", bytes,
                 " bytes of scratch memory");
  scratch_.push_back(*data);
  return Status::Ok();
}

void* KernelCall::stream(Device device) const {
  if (device.kind != DeviceKind::kCUDA) return nullptr;
  void* stream = nullptr;
  if (OrtStatus* st = g_api->KernelContext_GetGPUComputeStream(ctx_, &stream))
    g_api->ReleaseStatus(st);
  return stream;
}

}  // namespace xpu::ort
