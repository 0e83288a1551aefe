// xpuruntime.Device's facts and CUDA's current device (devices.h does the work).
#include <nanobind/stl/string.h>

#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/devices.h"

namespace xpu::python {

void bind_devices(nb::module_& m) {
  m.def("device_properties", [](int index) {
          runtime::DeviceProperties p;
          throw_if_error(runtime::cuda_device_properties(index, &p));
          nb::dict d;
          d["name"] = p.name;
          d["compute_capability"] = nb::make_tuple(p.compute_major, p.compute_minor);
          d["multiprocessor_count"] = p.multiprocessor_count;
          d["total_memory"] = p.total_memory;
          d["free_memory"] = p.free_memory;
          d["l2_cache_size"] = p.l2_cache_size;
          return d;
        }, nb::arg("index"));
  m.def("cuda_get_device", &runtime::cuda_current_device, "-1 without CUDA.");
  m.def("cuda_set_device", [](int index) { throw_if_error(runtime::cuda_set_current_device(index)); },
        nb::arg("index"));
}

}  // namespace xpu::python
