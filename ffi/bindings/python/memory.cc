// The runtime API's bindings (xpuruntime.memory, Device, Stream / Event, Array),
// one file per part: the Buffer type (buffer.cc), the CPython fast path of
// memory.allocate (allocate_fast.cc), pools and statistics (pools.cc), array
// views and copies (arrays.cc), devices (devices.cc), streams and events
// (streams.cc). Every call that may block (CUDA and pinned pools, CUDA
// synchronization) releases the GIL; host pool calls keep it (pool_may_block).
#include "bindings/python/runtime_bindings.h"

namespace xpu::python {

void bind_memory(nb::module_& m) {
  bind_buffer(m);
  bind_allocate_fast(m);
  bind_pools(m);
  bind_arrays(m);
  bind_devices(m);
  bind_streams(m);
}

}  // namespace xpu::python
