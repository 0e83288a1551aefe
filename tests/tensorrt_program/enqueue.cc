// enqueue on the GPU: every case, dtype choice and policy, at the case's shapes
// and at twice its symbolic dims. The plugin's outputs are compared with the
// core's own call of the op (call_op on the same device buffers and stream):
// bitwise under deterministic and reference, within OPS.md's tolerance under
// fast; deterministic also bitwise run to run.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>

#include "bindings/tensorrt/descriptors.h"
#include "suites.h"
#include "xpuruntime/op_spec.h"

namespace xpu::trt_test {

using nvinfer1::DataType;
using trt::to_dtype;

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

namespace {

size_t type_size(DataType t) {
  return t == DataType::kHALF || t == DataType::kBF16 ? 2 : t == DataType::kINT64 ? 8 : 4;
}

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);  // round to nearest even
}
float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t to_half(float f) {  // normal values of N(0, 1) data: no subnormal or overflow handling needed
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((u >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = u & 0x7FFFFF;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(h);
}
float from_half(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t u;
  if (exp == 0) {
    float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  if (exp == 31) u = sign | 0x7F800000 | (mant << 13);
  else u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

double value_at(const std::vector<char>& bytes, DataType t, size_t i) {
  switch (t) {
    case DataType::kFLOAT: { float f; std::memcpy(&f, bytes.data() + 4 * i, 4); return f; }
    case DataType::kHALF: { uint16_t h; std::memcpy(&h, bytes.data() + 2 * i, 2); return from_half(h); }
    case DataType::kBF16: { uint16_t h; std::memcpy(&h, bytes.data() + 2 * i, 2); return from_bf16(h); }
    case DataType::kINT32: { int32_t v; std::memcpy(&v, bytes.data() + 4 * i, 4); return v; }
    default: { int64_t v; std::memcpy(&v, bytes.data() + 8 * i, 8); return static_cast<double>(v); }
  }
}

double tolerance(DataType t) {
  return t == DataType::kHALF ? 2e-3 : t == DataType::kBF16 ? 1e-2 : t == DataType::kFLOAT ? 1e-5 : 0;
}

int64_t count(const nvinfer1::Dims& d) {
  int64_t n = 1;
  for (int i = 0; i < d.nbDims; ++i) n *= d.d[i];
  return n;
}

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes && cudaMalloc(&ptr, bytes) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

std::vector<char> download(const void* ptr, size_t bytes) {
  std::vector<char> host(bytes);
  if (bytes) cudaMemcpy(host.data(), ptr, bytes, cudaMemcpyDeviceToHost);
  return host;
}

// Random host data for one input: N(0, 1) floats (in the input's dtype), labels
// in [0, V) with one row in five set to ignore_index.
std::vector<char> random_input(const Input& in, DataType t, int64_t n, int64_t classes,
                               int64_t ignore_index, std::mt19937& rng) {
  std::vector<char> bytes(n * type_size(t));
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> label(0, classes - 1);
  for (int64_t i = 0; i < n; ++i) {
    if (in.kind == InKind::kLabels) {
      const int64_t v = i % 5 == 3 ? ignore_index : label(rng);
      if (t == DataType::kINT32) {
        const int32_t v32 = static_cast<int32_t>(v);
        std::memcpy(bytes.data() + 4 * i, &v32, 4);
      } else {
        std::memcpy(bytes.data() + 8 * i, &v, 8);
      }
      continue;
    }
    const float f = normal(rng);
    if (t == DataType::kFLOAT) std::memcpy(bytes.data() + 4 * i, &f, 4);
    else {
      const uint16_t h = t == DataType::kHALF ? to_half(f) : to_bf16(f);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

// The outputs of one call, as host bytes per case output.
using Outputs = std::vector<std::vector<char>>;

struct Run {
  std::vector<nvinfer1::PluginTensorDesc> in, out;
  std::vector<const void*> in_ptrs;
  std::vector<size_t> out_bytes;
};

bool run_plugin(Library& lib, const Case& c, const Run& r, Policy policy, cudaStream_t stream,
                Outputs* result, std::string* why) {
  Fields fields = c.fields;
  fields.text("policy", std::string(policy_name(policy)));
  Plugin p(lib.creator(c.plugin)->createPlugin(c.label.c_str(), fields.collection(),
                                               nvinfer1::TensorRTPhase::kRUNTIME));
  if (!p.plugin) return *why = "createPlugin", false;
  const int nin = static_cast<int>(r.in.size()), nout = static_cast<int>(r.out.size());
  if (p.runtime()->onShapeChange(r.in.data(), nin, r.out.data(), nout) != 0) return *why = "onShapeChange", false;
  std::vector<nvinfer1::DynamicPluginTensorDesc> din(nin), dout(nout);
  for (int i = 0; i < nin; ++i) din[i] = {r.in[i], r.in[i].dims, r.in[i].dims, r.in[i].dims};
  for (int j = 0; j < nout; ++j) dout[j] = {r.out[j], r.out[j].dims, r.out[j].dims, r.out[j].dims};
  DeviceBuffer ws(p.build()->getWorkspaceSize(din.data(), nin, dout.data(), nout));
  std::vector<std::unique_ptr<DeviceBuffer>> outs;
  std::vector<void*> out_ptrs;
  for (size_t b : r.out_bytes) {
    outs.push_back(std::make_unique<DeviceBuffer>(b));
    cudaMemsetAsync(outs.back()->ptr, 0xFF, b, stream);  // what is not written shows
    out_ptrs.push_back(outs.back()->ptr);
  }
  if (p.runtime()->enqueue(r.in.data(), r.out.data(), r.in_ptrs.data(), out_ptrs.data(), ws.ptr, stream) != 0)
  {
    *why = "enqueue returned non-zero:";
    for (const std::string& m : lib.logger().take()) *why += " " + m;
    return false;
  }
  if (cudaStreamSynchronize(stream) != cudaSuccess) return *why = "CUDA error after enqueue", false;
  result->clear();
  for (size_t j = 0; j < outs.size(); ++j) result->push_back(download(outs[j]->ptr, r.out_bytes[j]));
  return true;
}

bool run_core(const Case& c, const Run& r, Policy policy, cudaStream_t stream, Outputs* result,
              std::string* why) {
  const OpSpec& spec = *find_spec_by_onnx_type(c.plugin);
  Fields fields = c.fields;
  AttrValues attrs;
  Policy ignored;
  if (!parse_attrs(spec, fields.given(), true, &attrs, &ignored).ok()) return *why = "parse_attrs", false;
  int device = 0;
  cudaGetDevice(&device);
  const Device dev{DeviceKind::kCUDA, device};
  std::vector<TensorView> in(spec.inputs.size()), out(spec.outputs.size());
  for (size_t i = 0; i < r.in.size(); ++i)
    in[i] = dense_view(const_cast<void*>(r.in_ptrs[i]), to_dtype(r.in[i].type), r.in[i].dims.d,
                       r.in[i].dims.nbDims, dev);
  std::vector<std::unique_ptr<DeviceBuffer>> outs;
  size_t j = 0;
  for (size_t o = 0; o < spec.outputs.size(); ++o) {
    const OutputSpec& os = spec.outputs[o];
    if (os.use != OutputUse::kResult || (os.present_if >= 0 && !in[os.present_if].present())) continue;
    outs.push_back(std::make_unique<DeviceBuffer>(r.out_bytes[j]));
    cudaMemsetAsync(outs.back()->ptr, 0xFF, r.out_bytes[j], stream);
    out[o] = dense_view(outs.back()->ptr, to_dtype(r.out[j].type), r.out[j].dims.d, r.out[j].dims.nbDims, dev);
    ++j;
  }
  const int64_t ws_bytes = workspace_bytes(spec, in, attrs);
  DeviceBuffer ws(ws_bytes);
  TensorView ws_view;
  if (ws_bytes > 0) ws_view = dense_view(ws.ptr, DType::kU8, &ws_bytes, 1, dev);
  ExecContext ctx;
  ctx.stream = stream;
  ctx.policy = policy;
  const Status s = call_op(spec, in, out, ws_view, attrs, ctx);
  if (!s.ok()) return *why = "the core's call failed: " + s.message(), false;
  if (cudaStreamSynchronize(stream) != cudaSuccess) return *why = "CUDA error after the core's call", false;
  result->clear();
  for (size_t k = 0; k < outs.size(); ++k) result->push_back(download(outs[k]->ptr, r.out_bytes[k]));
  return true;
}

}  // namespace

void check_enqueue(Library& lib, const Case& c, Checks& checks) {
  const OpSpec* spec = find_spec_by_onnx_type(c.plugin);
  AttrValues attrs;
  Policy ignored;
  Fields fields = c.fields;
  if (!checks.check(parse_attrs(*spec, fields.given(), true, &attrs, &ignored).ok(), c.label + " attrs")) return;
  const int ii = attr_index(*spec, "ignore_index");
  const int64_t ignore_index = ii >= 0 ? static_cast<int64_t>(attrs[ii].number) : -100;
  cudaStream_t stream = nullptr;
  if (!checks.check(cudaStreamCreate(&stream) == cudaSuccess, "cudaStreamCreate")) return;
  std::mt19937 rng(1234);
  for (Bound bound : {Bound::kValue, Bound::kMax})
    for (const Dtypes& d : dtype_choices(c)) {
      Run r;
      std::vector<std::unique_ptr<DeviceBuffer>> inputs;
      const int64_t classes = dims_of(c.inputs[0].shape, bound).d[c.inputs[0].shape.size() - 1];
      for (const Input& in : c.inputs) {
        nvinfer1::PluginTensorDesc desc{dims_of(in.shape, bound), input_type(in, d),
                                        nvinfer1::TensorFormat::kLINEAR, -1.f};
        const std::vector<char> host = random_input(in, desc.type, count(desc.dims), classes, ignore_index, rng);
        inputs.push_back(std::make_unique<DeviceBuffer>(host.size()));
        cudaMemcpy(inputs.back()->ptr, host.data(), host.size(), cudaMemcpyHostToDevice);
        r.in.push_back(desc);
        r.in_ptrs.push_back(inputs.back()->ptr);
      }
      for (const Output& o : c.outputs) {
        nvinfer1::PluginTensorDesc desc{dims_of(o.shape, bound), output_type(o, d),
                                        nvinfer1::TensorFormat::kLINEAR, -1.f};
        r.out.push_back(desc);
        r.out_bytes.push_back(count(desc.dims) * type_size(desc.type));
      }
      for (Policy policy : {Policy::kFast, Policy::kDeterministic, Policy::kReference}) {
        const std::string what = c.label + " " + dtypes_text(c, d) + (bound == Bound::kMax ? " (2x)" : "") +
                                 " " + std::string(policy_name(policy));
        Outputs plugin, again, core;
        std::string why;
        if (!checks.check(run_plugin(lib, c, r, policy, stream, &plugin, &why), what + " plugin: " + why)) continue;
        if (!checks.check(run_core(c, r, policy, stream, &core, &why), what + " core: " + why)) continue;
        for (size_t j = 0; j < c.outputs.size(); ++j) {
          const DataType t = r.out[j].type;
          const std::string out_what = what + " output '" + c.outputs[j].name + "'";
          if (policy != Policy::kFast || tolerance(t) == 0) {
            checks.check(plugin[j] == core[j], out_what + " bitwise equal to the core's");
            continue;
          }
          double num = 0, den = 0;
          const size_t n = plugin[j].size() / type_size(t);
          for (size_t i = 0; i < n; ++i) {
            const double a = value_at(plugin[j], t, i), b = value_at(core[j], t, i);
            if (std::isnan(a) != std::isnan(b)) num = INFINITY;
            if (!std::isnan(a) && !std::isnan(b)) num += (a - b) * (a - b), den += b * b;
          }
          const double err = std::sqrt(num) / (den > 0 ? std::sqrt(den) : 1.0);
          checks.check(err <= tolerance(t), out_what + " relative error " + std::to_string(err));
        }
        if (policy == Policy::kDeterministic &&
            checks.check(run_plugin(lib, c, r, policy, stream, &again, &why), what + " plugin again: " + why))
          checks.check(again == plugin, what + " bitwise equal run to run");
      }
    }
  cudaStreamDestroy(stream);
}

}  // namespace xpu::trt_test
