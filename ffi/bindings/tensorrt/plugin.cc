#include "bindings/tensorrt/plugin.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <new>
#include <vector>

#include "bindings/tensorrt/descriptors.h"
#include "bindings/tensorrt/logging.h"

namespace xpu::trt {

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::PluginTensorDesc;

namespace {

// Runs `fn` (returning a Status) so that no exception leaves a TensorRT call.
template <typename Fn>
Status guarded(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return Error(StatusCode::kOutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    return Error(StatusCode::kInternal, e.what());
  } catch (...) {
    return Error(StatusCode::kInternal, "unknown exception");
  }
}

// The TensorRT types of the outputs for these input types, from the spec's rules.
Status output_types(const Signature& sig, const AttrValues& attrs, const DataType* in_types,
                    int nb_inputs, std::vector<DataType>* out) {
  const OpSpec& spec = sig.spec();
  std::vector<DType> dtypes(nb_inputs);
  std::vector<TensorView> views(spec.inputs.size());
  for (int i = 0; i < nb_inputs; ++i) {
    dtypes[i] = to_dtype(in_types[i]);
    if (dtypes[i] == DType::kInvalid)
      return InvalidArgument(spec.op, ": '", spec.inputs[i].name, "' has type ",
                             type_name(in_types[i]), ", which no xpuruntime op takes");
    const int64_t one = 1;  // ranks are unknown here and do not decide dtypes
    views[i] = dense_view(nullptr, dtypes[i], &one, 1, Device{});
  }
  XPU_RETURN_IF_ERROR(check_dtypes(spec, dtypes));
  std::vector<OutputDesc> descs;
  XPU_RETURN_IF_ERROR(infer_outputs(spec, views, attrs, &descs));
  out->clear();
  for (int o : sig.outputs()) {
    DataType t{};
    if (!to_trt(descs[o].dtype, &t))
      return Error(StatusCode::kInternal, spec.op, ": output '", spec.outputs[o].name,
                   "' has a dtype TensorRT lacks");
    out->push_back(t);
  }
  return Status::Ok();
}

// The bounds of an optimization profile, as configurePlugin and getWorkspaceSize read them.
struct ProfileBound {
  const char* name;
  Dims DynamicPluginTensorDesc::*dims;
};
constexpr ProfileBound kProfileBounds[] = {{"min", &DynamicPluginTensorDesc::min},
                                           {"opt", &DynamicPluginTensorDesc::opt},
                                           {"max", &DynamicPluginTensorDesc::max}};

std::vector<Dims> dims_at(const DynamicPluginTensorDesc* d, int n, const ProfileBound& bound) {
  std::vector<Dims> out(n);
  for (int i = 0; i < n; ++i) out[i] = d[i].*(bound.dims);
  return out;
}

std::vector<DataType> types_of(const DynamicPluginTensorDesc* d, int n) {
  std::vector<DataType> out(n);
  for (int i = 0; i < n; ++i) out[i] = d[i].desc.type;
  return out;
}

// Input dims tagged for getOutputShapes: dim k of input i is the negative number
// tag(i, k), which infer_outputs copies through (it moves dims and adds attribute
// values, never computes with them); a non-negative result is a constant.
constexpr int64_t tag(int input, int dim) { return -2 - (int64_t{input} * kMaxDims + dim); }

}  // namespace

SpecPlugin::SpecPlugin(PluginConfig config, std::string layer_name)
    : config_(std::move(config)),
      signature_(*config_.spec, config_.declared),
      layer_name_(std::move(layer_name)),
      nb_inputs_(signature_.expected_inputs()) {}

SpecPlugin::SpecPlugin(const SpecPlugin& other)
    : nvinfer1::IPluginV3(),
      nvinfer1::IPluginV3OneCore(),
      nvinfer1::IPluginV3OneBuild(),
      nvinfer1::IPluginV3OneRuntime(),
      config_(other.config_),
      signature_(other.signature_),
      layer_name_(other.layer_name_),
      nb_inputs_(other.nb_inputs_) {}

int32_t SpecPlugin::report(const char* method, const Status& s) const noexcept {
  if (s.ok()) return 0;
  try {
    log_error(str_cat(kNamespace, "::", config_.spec->onnx_type, " (layer '", layer_name_, "') ",
                      method, ": ", s.message()));
  } catch (...) {
  }
  return 1;
}

nvinfer1::IPluginCapability* SpecPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* SpecPlugin::clone() noexcept {
  SpecPlugin* copy = nullptr;
  report("clone", guarded([&] {
    copy = new SpecPlugin(*this);
    return Status::Ok();
  }));
  return copy;
}

const char* SpecPlugin::getPluginName() const noexcept { return config_.spec->onnx_type; }

int32_t SpecPlugin::getNbOutputs() const noexcept {
  return static_cast<int32_t>(signature_.outputs().size());
}

int32_t SpecPlugin::getOutputDataTypes(DataType* output_types_out, int32_t nb_outputs,
                                       const DataType* input_types, int32_t nb_inputs) const noexcept {
  return report("getOutputDataTypes", guarded([&] {
    XPU_RETURN_IF_ERROR(signature_.check_counts(nb_inputs, nb_outputs));
    std::vector<DataType> types;
    XPU_RETURN_IF_ERROR(output_types(signature_, config_.attrs, input_types, nb_inputs, &types));
    std::copy(types.begin(), types.end(), output_types_out);
    return Status::Ok();
  }));
}

int32_t SpecPlugin::getOutputShapes(const DimsExprs* inputs, int32_t nb_inputs, const DimsExprs*,
                                    int32_t, DimsExprs* outputs, int32_t nb_outputs,
                                    nvinfer1::IExprBuilder& builder) noexcept {
  return report("getOutputShapes", guarded([&]() -> Status {
    const OpSpec& spec = *config_.spec;
    XPU_RETURN_IF_ERROR(signature_.check_counts(nb_inputs, nb_outputs));
    std::vector<TensorView> views(spec.inputs.size());
    for (int i = 0; i < nb_inputs; ++i) {
      if (inputs[i].nbDims < 0 || inputs[i].nbDims > kMaxDims)
        return InvalidArgument(spec.op, ": '", spec.inputs[i].name, "' has ", inputs[i].nbDims,
                               " dimensions; at most ", kMaxDims, " are supported");
      views[i].dtype = DType::kF32;  // dtypes do not decide shapes
      views[i].ndim = inputs[i].nbDims;
      for (int k = 0; k < inputs[i].nbDims; ++k) views[i].shape[k] = tag(i, k);
    }
    std::vector<OutputDesc> descs;
    XPU_RETURN_IF_ERROR(infer_outputs(spec, views, config_.attrs, &descs));
    for (int j = 0; j < nb_outputs; ++j) {
      const OutputDesc& d = descs[signature_.outputs()[j]];
      outputs[j].nbDims = d.ndim;
      for (int k = 0; k < d.ndim; ++k) {
        const int64_t v = d.shape[k];
        const int64_t index = -2 - v;
        const int input = static_cast<int>(index / kMaxDims), dim = static_cast<int>(index % kMaxDims);
        if (v >= 0)
          outputs[j].d[k] = builder.constant(v);
        else if (v <= -2 && input < nb_inputs && dim < inputs[input].nbDims)
          outputs[j].d[k] = inputs[input].d[dim];
        else
          return Error(StatusCode::kInternal, spec.op, ": output shape rule gave dimension ", v);
        if (outputs[j].d[k] == nullptr)
          return Error(StatusCode::kInternal, spec.op, ": TensorRT gave no expression for a dimension");
      }
    }
    return Status::Ok();
  }));
}

bool SpecPlugin::supportsFormatCombination(int32_t pos, const DynamicPluginTensorDesc* in_out,
                                           int32_t nb_inputs, int32_t nb_outputs) noexcept {
  try {
    if (!signature_.check_counts(nb_inputs, nb_outputs).ok() || pos < 0 || pos >= nb_inputs + nb_outputs)
      return false;
    if (in_out[pos].desc.format != nvinfer1::TensorFormat::kLINEAR) return false;
    if (pos < nb_inputs) {
      std::vector<DType> before(pos + 1);
      for (int i = 0; i <= pos; ++i) before[i] = to_dtype(in_out[i].desc.type);
      return input_dtype_ok(*config_.spec, static_cast<size_t>(pos), before[pos], before);
    }
    std::vector<DataType> in_types(nb_inputs), types;
    for (int i = 0; i < nb_inputs; ++i) in_types[i] = in_out[i].desc.type;
    if (!output_types(signature_, config_.attrs, in_types.data(), nb_inputs, &types).ok()) return false;
    return in_out[pos].desc.type == types[pos - nb_inputs];
  } catch (...) {
    return false;
  }
}

Status SpecPlugin::validate(const Dims* in_dims, const DataType* in_types, int nb_inputs,
                            const Dims* out_dims, const DataType* out_types, int nb_outputs) const {
  const OpSpec& spec = *config_.spec;
  XPU_RETURN_IF_ERROR(signature_.check_counts(nb_inputs, nb_outputs));
  DenseOperands operands;
  XPU_RETURN_IF_ERROR(set_inputs(in_dims, in_types, nb_inputs, nullptr, Device{}, &operands));
  const std::vector<TensorView>& inputs = operands.inputs();
  std::vector<TensorView> outputs(spec.outputs.size());
  std::vector<OutputDesc> inferred;
  if (!out_dims) XPU_RETURN_IF_ERROR(infer_outputs(spec, inputs, config_.attrs, &inferred));
  for (int j = 0; j < nb_outputs; ++j) {
    const int o = signature_.outputs()[j];
    const std::vector<int64_t> shape =
        out_dims ? std::vector<int64_t>(out_dims[j].d, out_dims[j].d + std::max(out_dims[j].nbDims, 0))
                 : operands.output_shape(spec, o, inferred[o]);
    XPU_RETURN_IF_ERROR(operands.output_view(
        spec, o, DenseTensor{placeholder_data(), to_dtype(out_types[j]), shape, Device{}, true},
        &outputs[o]));
  }
  TensorView workspace;
  const int64_t bytes = workspace_bytes(spec, inputs, config_.attrs);
  if (bytes > 0) workspace = dense_view(placeholder_data(), DType::kU8, &bytes, 1, Device{});
  return validate_op(spec, inputs, outputs, workspace, config_.attrs);
}

Status SpecPlugin::set_inputs(const Dims* in_dims, const DataType* in_types, int nb_inputs,
                              const void* const* data, Device device, DenseOperands* out) const {
  const OpSpec& spec = *config_.spec;
  std::vector<DenseTensor> dense(spec.inputs.size());
  for (int i = 0; i < nb_inputs && i < static_cast<int>(dense.size()); ++i)
    dense[i] = dense_of(in_dims[i], in_types[i],
                        data ? const_cast<void*>(data[i]) : placeholder_data(), device);
  return out->set_inputs(spec, dense);
}

int64_t SpecPlugin::workspace_at(const Dims* in_dims, const DataType* in_types, int nb_inputs) const {
  DenseOperands operands;
  if (!set_inputs(in_dims, in_types, nb_inputs, nullptr, Device{}, &operands).ok())
    return 0;  // configurePlugin reports the shapes' error
  return workspace_bytes(*config_.spec, operands.inputs(), config_.attrs);
}

int32_t SpecPlugin::configurePlugin(const DynamicPluginTensorDesc* in, int32_t nb_inputs,
                                    const DynamicPluginTensorDesc* out, int32_t nb_outputs) noexcept {
  return report("configurePlugin", guarded([&]() -> Status {
    XPU_RETURN_IF_ERROR(signature_.check_counts(nb_inputs, nb_outputs));
    nb_inputs_ = nb_inputs;
    const std::vector<DataType> in_types = types_of(in, nb_inputs), out_types = types_of(out, nb_outputs);
    // Every bound of the profile must be a valid call: min, opt and max shapes.
    for (const ProfileBound& b : kProfileBounds) {
      const std::vector<Dims> dims = dims_at(in, nb_inputs, b);
      Status s = validate(dims.data(), in_types.data(), nb_inputs, nullptr, out_types.data(), nb_outputs);
      if (!s.ok())
        return Status(s.code(), str_cat("at the profile's ", b.name, " shapes: ", s.message()));
    }
    return Status::Ok();
  }));
}

size_t SpecPlugin::getWorkspaceSize(const DynamicPluginTensorDesc* inputs, int32_t nb_inputs,
                                    const DynamicPluginTensorDesc*, int32_t) const noexcept {
  int64_t bytes = 0;
  const Status s = guarded([&] {
    const std::vector<DataType> types = types_of(inputs, nb_inputs);
    // Enough for any shape of the profile: the largest of its bounds.
    for (const ProfileBound& b : kProfileBounds)
      bytes = std::max(bytes, workspace_at(dims_at(inputs, nb_inputs, b).data(), types.data(), nb_inputs));
    return Status::Ok();
  });
  report("getWorkspaceSize", s);
  return static_cast<size_t>(bytes);
}

int32_t SpecPlugin::onShapeChange(const PluginTensorDesc* in, int32_t nb_inputs,
                                  const PluginTensorDesc* out, int32_t nb_outputs) noexcept {
  return report("onShapeChange", guarded([&]() -> Status {
    XPU_RETURN_IF_ERROR(signature_.check_counts(nb_inputs, nb_outputs));
    nb_inputs_ = nb_inputs;
    std::vector<Dims> in_dims(nb_inputs), out_dims(nb_outputs);
    std::vector<DataType> in_types(in_dims.size()), out_types(out_dims.size());
    for (size_t i = 0; i < in_dims.size(); ++i) in_dims[i] = in[i].dims, in_types[i] = in[i].type;
    for (size_t j = 0; j < out_dims.size(); ++j) out_dims[j] = out[j].dims, out_types[j] = out[j].type;
    return validate(in_dims.data(), in_types.data(), nb_inputs, out_dims.data(), out_types.data(),
                    nb_outputs);
  }));
}

int32_t SpecPlugin::enqueue(const PluginTensorDesc* input_desc, const PluginTensorDesc* output_desc,
                            const void* const* inputs, void* const* outputs, void* workspace,
                            cudaStream_t stream) noexcept {
  return report("enqueue", guarded([&]() -> Status {
    const OpSpec& spec = *config_.spec;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess)
      return Error(StatusCode::kInternal, spec.op, ": no current CUDA device");
    const Device dev{DeviceKind::kCUDA, device};
    // enqueue is not told the counts: the inputs are those of the last shapes seen.
    const int nb_inputs = nb_inputs_;
    std::vector<Dims> dims(nb_inputs);
    std::vector<DataType> types(nb_inputs);
    for (int i = 0; i < nb_inputs; ++i) dims[i] = input_desc[i].dims, types[i] = input_desc[i].type;
    DenseOperands operands;
    XPU_RETURN_IF_ERROR(set_inputs(dims.data(), types.data(), nb_inputs, inputs, dev, &operands));
    const std::vector<TensorView>& in = operands.inputs();
    std::vector<TensorView> out(spec.outputs.size());
    for (size_t j = 0; j < signature_.outputs().size(); ++j)
      XPU_RETURN_IF_ERROR(operands.output_view(
          spec, signature_.outputs()[j],
          dense_of(output_desc[j].dims, output_desc[j].type, outputs[j], dev), &out[signature_.outputs()[j]]));
    TensorView ws;
    const int64_t bytes = workspace_bytes(spec, in, config_.attrs);
    if (bytes > 0) ws = dense_view(workspace, DType::kU8, &bytes, 1, dev);
    ExecContext ctx;
    ctx.stream = stream;
    ctx.policy = config_.policy;
    return call_op(spec, in, out, ws, config_.attrs, ctx);
  }));
}

nvinfer1::IPluginV3* SpecPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
  return clone();
}

const nvinfer1::PluginFieldCollection* SpecPlugin::getFieldsToSerialize() noexcept {
  const nvinfer1::PluginFieldCollection* fc = nullptr;
  report("getFieldsToSerialize", guarded([&] {
    serialized_ = std::make_unique<FieldList>(config_);
    fc = serialized_->collection();
    return Status::Ok();
  }));
  return fc;
}

}  // namespace xpu::trt
