// The `xpuruntime._core` extension: registry and build facts, output
// allocation for the native frontend, the generic op call (op_call.cc), XLA FFI capsules.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings/python/python_adapter.h"
#include "bindings/xla/xla_targets.h"
#include "xpuruntime/build_info.h"
#if XPURUNTIME_WITH_XLA
#include "xla/ffi/api/c_api.h"
#endif
#include "xpuruntime/registry.h"
#include "xpuruntime/runtime.h"

namespace xpu::python {

void bind_op_call(nb::module_& m);
void bind_memory(nb::module_& m);

namespace {

// Allocates a dense array on `device` that frees itself (stream-ordered) when
// the last DLPack consumer lets go.
nb::ndarray<nb::array_api> empty(const std::vector<int64_t>& shape, const std::string& dtype_name_,
                    const std::string& device_kind, int device_index, uintptr_t stream) {
  const DType dt = dtype_from_name(dtype_name_);
  if (dt == DType::kInvalid) throw_if_error(InvalidArgument("empty: unknown dtype '", dtype_name_, "'"));
  Device dev;
  if (device_kind == "cuda") dev = {DeviceKind::kCUDA, device_index};
  else if (device_kind != "cpu")
    throw_if_error(InvalidArgument("empty: unknown device kind '", device_kind, "'"));
  size_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw_if_error(InvalidArgument("empty: negative dimension ", d));
    count *= static_cast<size_t>(d);
  }
  void* ptr = nullptr;
  throw_if_error(runtime::allocate(dev, count * dtype_size(dt), reinterpret_cast<void*>(stream), &ptr));
  struct Owner { Device dev; void* ptr; void* stream; };
  auto* owner = new Owner{dev, ptr, reinterpret_cast<void*>(stream)};
  nb::capsule release(owner, [](void* p) noexcept {
    auto* o = static_cast<Owner*>(p);
    runtime::deallocate(o->dev, o->ptr, o->stream);
    delete o;
  });
  std::vector<size_t> sizes(shape.begin(), shape.end());
  const int dl_device = dev.kind == DeviceKind::kCUDA ? nb::device::cuda::value : nb::device::cpu::value;
  return nb::ndarray<nb::array_api>(ptr, sizes.size(), sizes.data(), release, nullptr, dlpack_from_dtype(dt),
                       dl_device, dev.index);
}

nb::list registered_kernels() {
  nb::list out;
  for (const KernelKey& k : Registry::global().keys()) {
    nb::dict d;
    d["op"] = k.op;
    d["direction"] = std::string(direction_name(k.direction));
    d["device"] = std::string(device_kind_name(k.device));
    d["dtype"] = std::string(dtype_name(k.dtype));
    d["policy"] = std::string(policy_name(k.policy));
    out.append(d);
  }
  return out;
}

nb::dict ffi_targets() {
  nb::dict out;
#if XPURUNTIME_WITH_XLA
  for (const auto& t : xla_adapter::all_targets()) {
    nb::dict platforms;
    platforms["cpu"] = nb::capsule(t.cpu);
    if (t.cuda) platforms["CUDA"] = nb::capsule(t.cuda);
    out[t.name.c_str()] = platforms;
  }
#endif
  return out;
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "xpuruntime's C++ core: kernels, registry and framework adapters.";
  register_exceptions(m);

  const BuildInfo info = build_info();
  m.attr("__version__") = info.version;
  m.attr("built_with_cuda") = info.cuda;
  m.attr("cuda_architectures") = info.cuda_archs;
#if XPURUNTIME_WITH_XLA
  m.attr("xla_ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
  m.attr("built_jaxlib_version") = XPURUNTIME_JAXLIB_VERSION;
#else
  m.attr("built_jaxlib_version") = nb::none();
  m.attr("xla_ffi_api_version") = nb::none();  // built without XLA FFI headers
#endif

  m.def("cuda_device_count", &runtime::cuda_device_count,
        "Usable CUDA devices (0 without a driver, a GPU, or CUDA in this build).");
  m.def("kernels", &registered_kernels, "Every registered kernel as a dict.");
  m.def("ffi_targets", &ffi_targets, "{target name: {platform: XLA FFI handler capsule}}.");
  m.def("xla_captured_calls", [] {
#if XPURUNTIME_WITH_XLA
    return xla_adapter::captured_calls();
#else
    return 0LL;
#endif
  }, "CUDA FFI handler calls made during CUDA-graph capture (counted with XPURUNTIME_COUNT_CAPTURES=1).");
  m.def("empty", &empty, nb::arg("shape"), nb::arg("dtype"), nb::arg("device_kind"),
        nb::arg("device_index"), nb::arg("stream"),
        "Uninitialized dense array owned by xpuruntime, exported through DLPack.");
  m.def(
      "array_info",
      [](Array a) {
        ArrayDims dims;
        DenseTensor t;
        throw_if_error(tensor_of(a, &dims, &t));
        nb::list shape;
        for (int64_t n : t.shape) shape.append(n);
        return nb::make_tuple(std::string(dtype_name(t.dtype)), nb::tuple(shape),
                              std::string(device_kind_name(t.device.kind)), t.device.index);
      },
      nb::arg("array"), "(dtype, shape, device kind, device index) of any DLPack array.");
  m.def(
      "synchronize",
      [](const std::string& kind, int index, uintptr_t stream) {
        Device d{kind == "cuda" ? DeviceKind::kCUDA : DeviceKind::kCPU, index};
        throw_if_error(runtime::synchronize(d, reinterpret_cast<void*>(stream)));
      },
      nb::arg("device_kind"), nb::arg("device_index"), nb::arg("stream"));
  m.def(
      "lookup_kernel",
      [](const std::string& op, const std::string& direction, const std::string& device,
         const std::string& dtype, const std::string& policy) {
        KernelKey key{op, direction == "backward" ? Direction::kBackward : Direction::kForward,
                      device == "cuda" ? DeviceKind::kCUDA : DeviceKind::kCPU, DType::kInvalid,
                      Policy::kFast};
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64})
          if (dtype_name(t) == dtype) key.dtype = t;
        if (!parse_policy(policy, &key.policy))
          throw_if_error(InvalidArgument("unknown policy '", policy, "'"));
        AnyKernel fn = nullptr;
        throw_if_error(Registry::global().find(key, &fn));
      },
      nb::arg("op"), nb::arg("direction"), nb::arg("device"), nb::arg("dtype"), nb::arg("policy"),
      "Raises KernelNotFoundError (listing what exists) when no kernel matches.");

  bind_op_call(m);
  bind_memory(m);
}

}  // namespace xpu::python
