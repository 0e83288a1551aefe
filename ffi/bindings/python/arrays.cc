// The memory side of xpuruntime.Array: DLPack views of raw memory, what a
// DLPack producer holds, and copies between devices.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <vector>

#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/memory/copy.h"

namespace xpu::python {

void bind_arrays(nb::module_& m) {
  m.def("make_array", [](nb::handle owner, uintptr_t ptr, const std::vector<int64_t>& shape,
                         const std::vector<int64_t>& strides, int code, int bits,
                         const std::string& kind, int index) {
          const Device d = make_device(kind, index);
          if (!strides.empty() && strides.size() != shape.size())
            throw_if_error(InvalidArgument("make_array: ", strides.size(), " strides for ", shape.size(), " dims"));
          std::vector<size_t> sizes;
          for (int64_t v : shape) {
            if (v < 0) throw_if_error(InvalidArgument("negative dimension ", v));
            sizes.push_back(static_cast<size_t>(v));
          }
          const nb::dlpack::dtype dt{static_cast<uint8_t>(code), static_cast<uint8_t>(bits), 1};
          const int dl_device = d.kind == DeviceKind::kCUDA ? nb::device::cuda::value : nb::device::cpu::value;
          return nb::ndarray<nb::array_api>(reinterpret_cast<void*>(ptr), sizes.size(), sizes.data(),
                                            view_owner(owner), strides.empty() ? nullptr : strides.data(), dt,
                                            dl_device, d.index);
        }, nb::arg("owner"), nb::arg("ptr"), nb::arg("shape"), nb::arg("strides"), nb::arg("code"),
        nb::arg("bits"), nb::arg("device_kind"), nb::arg("device_index"),
        "A DLPack-exporting view of memory kept alive by `owner` (zero-copy); a Buffer owner "
        "counts it as one of its views.");
  m.def("dlpack_info", [](Array a) {
          const nb::dlpack::dtype t = a.dtype();
          if (t.lanes != 1) throw_if_error(InvalidArgument("vector dtypes (lanes=", int(t.lanes), ") are not supported"));
          ArrayDims dims;
          DenseTensor facts;
          throw_if_error(tensor_of(a, &dims, &facts));
          return nb::make_tuple(reinterpret_cast<uintptr_t>(a.data()), int(t.code), int(t.bits),
                                nb::tuple(nb::cast(dims.shape)), nb::tuple(nb::cast(dims.strides)),
                                std::string(device_kind_name(facts.device.kind)), facts.device.index);
        }, nb::arg("array"), "(ptr, dtype code, bits, shape, strides in elements, device kind, index).");
  m.def("copy_bytes", [](uintptr_t dst, const std::string& dst_kind, int dst_index, uintptr_t src,
                         const std::string& src_kind, int src_index, size_t nbytes, uintptr_t stream) {
          const Device dd = make_device(dst_kind, dst_index), sd = make_device(src_kind, src_index);
          nogil([&] {
            return memory::copy_bytes(reinterpret_cast<void*>(dst), dd, reinterpret_cast<const void*>(src), sd,
                                      nbytes, reinterpret_cast<void*>(stream));
          });
        });
}

}  // namespace xpu::python
