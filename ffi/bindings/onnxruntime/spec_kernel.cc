#include "bindings/onnxruntime/spec_kernel.h"

#include <memory>

#include "bindings/onnxruntime/node_attributes.h"
#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
namespace {

struct Kernel {
  const OpVariant* variant;
  NodeAttributes node;
};

// One compute call: inputs as views, outputs allocated by ORT in the shapes the
// spec infers, scratch for the workspace and for results the node leaves out.
Status compute(const Kernel& k, OrtKernelContext* context) {
  const OpSpec& spec = *k.variant->spec;
  KernelCall call(context);
  std::vector<DenseTensor> dense(spec.inputs.size());
  for (size_t i = 0; i < dense.size(); ++i) XPU_RETURN_IF_ERROR(call.input(i, &dense[i]));
  DenseOperands operands;
  XPU_RETURN_IF_ERROR(operands.set_inputs(spec, dense));
  const std::vector<TensorView>& inputs = operands.inputs();
  std::vector<OutputDesc> descs;
  XPU_RETURN_IF_ERROR(infer_outputs(spec, inputs, k.node.values, &descs));

  Device device{};
  for (const DenseTensor& t : dense)
    if (t.present) {
      device = t.device;
      break;
    }
  std::vector<TensorView> outputs(spec.outputs.size());  // kSaved outputs stay absent
  const std::vector<size_t>& index = k.variant->output_index;
  for (size_t o = 0; o < index.size(); ++o) {
    const size_t j = index[o];
    const OutputDesc& d = descs[j];
    if (d.ndim < 0) continue;  // the node does not take it either (check_node)
    void* data = nullptr;
    const std::vector<int64_t> shape = operands.output_shape(spec, j, d);
    XPU_RETURN_IF_ERROR(call.output(o, shape, &data));
    if (!data) {  // a result the node does not take: the op writes it all the same
      int64_t bytes = static_cast<int64_t>(dtype_size(d.dtype));
      for (int64_t n : shape) bytes *= n;
      XPU_RETURN_IF_ERROR(call.scratch(bytes, &data));
    }
    XPU_RETURN_IF_ERROR(
        operands.output_view(spec, j, DenseTensor{data, d.dtype, shape, device, true}, &outputs[j]));
  }
  TensorView workspace;
  if (const int64_t bytes = workspace_bytes(spec, inputs, k.node.values); bytes > 0) {
    void* ws = nullptr;
    XPU_RETURN_IF_ERROR(call.scratch(bytes, &ws));
    workspace = dense_view(ws, DType::kU8, &bytes, 1, device);
  }
  return call_op(spec, inputs, outputs, workspace, k.node.values,
                 ExecContext{call.stream(device), k.node.policy});
}

// Whether the node names its input or output `i` (an optional one may be left empty).
bool node_has(const OrtKernelInfo* info, bool input, size_t i) {
  size_t count = 0;
  OrtStatus* st = input ? g_api->KernelInfo_GetInputCount(info, &count)
                        : g_api->KernelInfo_GetOutputCount(info, &count);
  if (st) g_api->ReleaseStatus(st);
  if (st || i >= count) return false;
  size_t size = 0;
  st = input ? g_api->KernelInfo_GetInputName(info, i, nullptr, &size)
             : g_api->KernelInfo_GetOutputName(info, i, nullptr, &size);
  if (st) g_api->ReleaseStatus(st);
  return !st && size > 1;  // the size counts the terminating NUL
}

// A result that exists only with an optional input (RMSNorm's h) is refused when
// the node takes it without that input: the op would never write it.
Status check_node(const OrtKernelInfo* info, const OpVariant& v) {
  const OpSpec& spec = *v.spec;
  for (size_t o = 0; o < v.output_index.size(); ++o) {
    const OutputSpec& out = spec.outputs[v.output_index[o]];
    if (out.present_if >= 0 && node_has(info, false, o) &&
        !node_has(info, true, static_cast<size_t>(out.present_if)))
      return InvalidArgument(spec.op, ": output '", out.name, "' exists only with input '",
                             spec.inputs[out.present_if].name, "'");
  }
  return Status::Ok();
}

// ---- OrtCustomOp callbacks ----------------------------------------------------------------

const OpVariant& variant_of(const OrtCustomOp* op) { return static_cast<const SpecOp*>(op)->variant; }

const char* get_name(const OrtCustomOp* op) { return variant_of(op).spec->onnx_type; }
const char* get_provider(const OrtCustomOp* op) {
  return variant_of(op).device == DeviceKind::kCUDA ? "CUDAExecutionProvider"
                                                    : "CPUExecutionProvider";
}
size_t input_count(const OrtCustomOp* op) { return variant_of(op).inputs.size(); }
ONNXTensorElementDataType input_type(const OrtCustomOp* op, size_t i) {
  return variant_of(op).inputs[i];
}
size_t output_count(const OrtCustomOp* op) { return variant_of(op).outputs.size(); }
ONNXTensorElementDataType output_type(const OrtCustomOp* op, size_t i) {
  return variant_of(op).outputs[i];
}
OrtCustomOpInputOutputCharacteristic characteristic(bool optional) {
  return optional ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
}
OrtCustomOpInputOutputCharacteristic input_char(const OrtCustomOp* op, size_t i) {
  return characteristic(variant_of(op).input_optional[i]);
}
OrtCustomOpInputOutputCharacteristic output_char(const OrtCustomOp* op, size_t i) {
  return characteristic(variant_of(op).output_optional[i]);
}
OrtMemType input_memory(const OrtCustomOp*, size_t) { return OrtMemTypeDefault; }
int min_arity(const OrtCustomOp*) { return 1; }
int homogeneous(const OrtCustomOp*) { return 1; }

// Runs `body`, turning an escaping exception into an ORT status.
template <typename Body>
OrtStatusPtr guarded(const char* what, Body body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, str_cat("xpuruntime: ", what, ": ", e.what()).c_str());
  } catch (...) {
    return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, str_cat("xpuruntime: unknown error in ", what).c_str());
  }
}

OrtStatusPtr create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info,
                           void** kernel) {
  return guarded("kernel creation", [&]() -> OrtStatusPtr {
    auto k = std::make_unique<Kernel>(Kernel{&variant_of(op), {}});
    if (Status s = read_node_attributes(info, *k->variant->spec, &k->node); !s.ok())
      return to_ort_status(s);
    if (const Status& s = k->variant->dtype_error; !s.ok())
      return to_ort_status(Status(s.code(), str_cat(k->node.label, ": ", s.message())));
    if (Status s = check_node(info, *k->variant); !s.ok())
      return to_ort_status(Status(s.code(), str_cat(k->node.label, ": ", s.message())));
    *kernel = k.release();
    return nullptr;
  });
}

OrtStatusPtr compute_kernel(void* kernel, OrtKernelContext* context) {
  return guarded("compute", [&]() -> OrtStatusPtr {
    const auto* k = static_cast<const Kernel*>(kernel);
    const Status s = compute(*k, context);
    return s.ok() ? nullptr : to_ort_status(Status(s.code(), str_cat(k->node.label, ": ", s.message())));
  });
}

void destroy_kernel(void* kernel) { delete static_cast<Kernel*>(kernel); }

}  // namespace

SpecOp::SpecOp(OpVariant v) : OrtCustomOp{}, variant(std::move(v)) {
  version = kApiVersion;  // ORT reads the fields up to KernelComputeV2
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

}  // namespace xpu::ort
