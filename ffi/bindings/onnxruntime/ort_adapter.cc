#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {

const OrtApi* g_api = nullptr;

namespace {

DType dtype_of(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DType::kF32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DType::kF16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return DType::kBF16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DType::kF64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DType::kI32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DType::kI64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DType::kU8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DType::kBool;
    default: return DType::kInvalid;
  }
}

// Converts an OrtStatus into a Status and releases it.
Status from_ort(OrtStatus* st) {
  if (!st) return Status::Ok();
  Status s(StatusCode::kInternal, g_api->GetErrorMessage(st));
  g_api->ReleaseStatus(st);
  return s;
}

Status view_of_value(const OrtValue* value, Device device, TensorView* out) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->GetTensorTypeAndShape(value, &info)));
  ONNXTensorElementDataType type;
  size_t ndim = 0;
  Status s = from_ort(g_api->GetTensorElementType(info, &type));
  if (s.ok()) s = from_ort(g_api->GetDimensionsCount(info, &ndim));
  int64_t dims[kMaxDims] = {};
  if (s.ok() && ndim > static_cast<size_t>(kMaxDims))
    s = InvalidArgument("xpuruntime supports at most ", kMaxDims, " dimensions, got ", ndim);
  if (s.ok()) s = from_ort(g_api->GetDimensions(info, dims, ndim));
  g_api->ReleaseTensorTypeAndShapeInfo(info);
  XPU_RETURN_IF_ERROR(s);
  void* data = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->GetTensorMutableData(const_cast<OrtValue*>(value), &data)));
  *out = dense_view(data, dtype_of(type), dims, static_cast<int>(ndim), device);
  return Status::Ok();
}

// ---- OrtCustomOp callbacks: each reads the schema and never throws -------------------------

const OpSchema& schema_of(const OrtCustomOp* op) { return static_cast<const CustomOp*>(op)->schema; }

struct KernelState {
  const OpSchema* schema;
  void* state;
};

const char* get_name(const OrtCustomOp* op) { return schema_of(op).name; }
const char* get_provider(const OrtCustomOp* op) {
  return schema_of(op).device == DeviceKind::kCUDA ? "CUDAExecutionProvider" : "CPUExecutionProvider";
}
ONNXTensorElementDataType input_type(const OrtCustomOp* op, size_t i) { return schema_of(op).inputs[i]; }
size_t input_count(const OrtCustomOp* op) { return schema_of(op).inputs.size(); }
ONNXTensorElementDataType output_type(const OrtCustomOp* op, size_t i) { return schema_of(op).outputs[i]; }
size_t output_count(const OrtCustomOp* op) { return schema_of(op).outputs.size(); }
OrtCustomOpInputOutputCharacteristic characteristic(const std::vector<bool>& optional, size_t i) {
  return i < optional.size() && optional[i] ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
}
OrtCustomOpInputOutputCharacteristic input_char(const OrtCustomOp* op, size_t i) {
  return characteristic(schema_of(op).input_optional, i);
}
OrtCustomOpInputOutputCharacteristic output_char(const OrtCustomOp* op, size_t i) {
  return characteristic(schema_of(op).output_optional, i);
}
OrtMemType input_memory(const OrtCustomOp*, size_t) { return OrtMemTypeDefault; }

OrtStatusPtr create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info,
                           void** kernel) {
  try {
    const OpSchema& schema = schema_of(op);
    void* state = nullptr;
    Status s = schema.create(info, &state);
    if (!s.ok()) return to_ort_status(s);
    *kernel = new KernelState{&schema, state};
    return nullptr;
  } catch (const std::exception& e) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, e.what());
  } catch (...) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, "xpuruntime: unknown error creating kernel");
  }
}

OrtStatusPtr compute_kernel(void* kernel, OrtKernelContext* context) {
  try {
    auto* k = static_cast<KernelState*>(kernel);
    KernelCall call(context, {k->schema->device, 0});
    return to_ort_status(k->schema->compute(k->state, call));
  } catch (const std::exception& e) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, e.what());
  } catch (...) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, "xpuruntime: unknown error in compute");
  }
}

void destroy_kernel(void* kernel) {
  auto* k = static_cast<KernelState*>(kernel);
  if (k->schema->destroy) k->schema->destroy(k->state);
  delete k;
}

int min_arity(const OrtCustomOp*) { return 1; }
int homogeneous(const OrtCustomOp*) { return 1; }

}  // namespace

CustomOp::CustomOp(OpSchema s) : OrtCustomOp{}, schema(std::move(s)) {
  version = ORT_API_VERSION;
  CreateKernel = nullptr;  // the V2 entry points carry errors as statuses
  GetName = get_name;
  GetExecutionProviderType = get_provider;
  GetInputType = input_type;
  GetInputTypeCount = input_count;
  GetOutputType = output_type;
  GetOutputTypeCount = output_count;
  KernelDestroy = destroy_kernel;
  GetInputCharacteristic = input_char;
  GetOutputCharacteristic = output_char;
  GetInputMemoryType = input_memory;
  GetVariadicInputMinArity = min_arity;
  GetVariadicInputHomogeneity = homogeneous;
  GetVariadicOutputMinArity = min_arity;
  GetVariadicOutputHomogeneity = homogeneous;
  CreateKernelV2 = create_kernel;
  KernelComputeV2 = compute_kernel;
}

KernelCall::KernelCall(OrtKernelContext* ctx, Device device) : ctx_(ctx), device_(device) {
  if (device.kind == DeviceKind::kCUDA) {
    // The CUDA EP runs the whole session on one device; read it from the stream's context.
    device_.index = 0;
  }
}

size_t KernelCall::input_count() const {
  size_t n = 0;
  OrtStatus* st = g_api->KernelContext_GetInputCount(ctx_, &n);
  if (st) g_api->ReleaseStatus(st);
  return n;
}

size_t KernelCall::output_count() const {
  size_t n = 0;
  OrtStatus* st = g_api->KernelContext_GetOutputCount(ctx_, &n);
  if (st) g_api->ReleaseStatus(st);
  return n;
}

Status KernelCall::input(size_t i, TensorView* out) const {
  *out = TensorView{};
  if (i >= input_count()) return Status::Ok();
  const OrtValue* value = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetInput(ctx_, i, &value)));
  if (!value) return Status::Ok();  // an optional input left empty
  return view_of_value(value, device_, out);
}

Status KernelCall::output(size_t i, const int64_t* shape, int ndim, TensorView* out) const {
  *out = TensorView{};
  if (i >= output_count()) return Status::Ok();
  OrtValue* value = nullptr;
  XPU_RETURN_IF_ERROR(from_ort(g_api->KernelContext_GetOutput(ctx_, i, shape, ndim, &value)));
  if (!value) return Status::Ok();
  return view_of_value(value, device_, out);
}

void* KernelCall::stream() const {
  if (device_.kind != DeviceKind::kCUDA) return nullptr;
  void* stream = nullptr;
  OrtStatus* st = g_api->KernelContext_GetGPUComputeStream(ctx_, &stream);
  if (st) g_api->ReleaseStatus(st);
  return stream;
}

float attr_float(const OrtKernelInfo* info, const char* name, float fallback) {
  float v = fallback;
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_float(info, name, &v)) {
    g_api->ReleaseStatus(st);
    return fallback;
  }
  return v;
}

int64_t attr_int(const OrtKernelInfo* info, const char* name, int64_t fallback) {
  int64_t v = fallback;
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_int64(info, name, &v)) {
    g_api->ReleaseStatus(st);
    return fallback;
  }
  return v;
}

std::string attr_string(const OrtKernelInfo* info, const char* name, const std::string& fallback) {
  size_t size = 0;
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_string(info, name, nullptr, &size)) {
    g_api->ReleaseStatus(st);
    if (size == 0) return fallback;
  }
  std::string v(size, '\0');
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_string(info, name, v.data(), &size)) {
    g_api->ReleaseStatus(st);
    return fallback;
  }
  if (!v.empty() && v.back() == '\0') v.pop_back();
  return v;
}

Policy attr_policy(const OrtKernelInfo* info) {
  Policy p = Policy::kFast;
  parse_policy(attr_string(info, "policy", "fast"), &p);
  return p;
}

OrtStatus* to_ort_status(const Status& s) {
  if (s.ok()) return nullptr;
  const OrtErrorCode code = s.code() == StatusCode::kInvalidArgument ? ORT_INVALID_ARGUMENT
                            : s.code() == StatusCode::kNotFound     ? ORT_NOT_IMPLEMENTED
                                                                    : ORT_FAIL;
  return g_api->CreateStatus(code, s.message().c_str());
}

}  // namespace xpu::ort
