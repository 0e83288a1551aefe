// What the runtime API's binding files share (xpuruntime.memory, Device,
// Stream / Event, Array): the Buffer type, device conversions and the Python
// objects the fast path calls back into. The bindings only translate: the
// work is done by the core (memory/pool.h, stream.h, devices.h, memory/copy.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bindings/python/python_adapter.h"
#include "xpuruntime/memory/pool.h"

namespace xpu::python {

using memory::CachingPool;

// "cpu" / "cuda" and an index; InvalidArgumentError for another kind.
Device make_device(const std::string& kind, int index);

// Runs a pool call, without the GIL where it may wait for the CUDA driver.
template <typename Fn>
Status pool_call(bool release_gil, Fn&& fn) {
  if (!release_gil) return fn();
  nb::gil_scoped_release release;
  return fn();
}

// Host pools only run short host code under their mutex, so keeping the GIL
// there saves a release and reacquire per call; CUDA and pinned pools may wait
// in the driver (a new segment, an event) and let other threads run.
inline bool pool_may_block(const CachingPool& pool, bool pinned) {
  return pool.device().kind != DeviceKind::kCPU || pinned;
}

// A device's pool as a shared_ptr that owns nothing (pools live for the process).
std::shared_ptr<CachingPool> global_pool(Device d);

// One allocation: xpuruntime.memory.Buffer itself (a Python wrapper around it
// doubled the cost of an allocate+free pair). Freed by free(), by the context
// manager, or when collected; always stream-ordered on the stream given last
// (free's, else the allocation's).
//
// Views (Arrays, and through them DLPack consumers) hold a reference to the
// Buffer and count themselves in `views`: free() while views exist ends the
// Buffer for its user at once but returns the memory to the pool only when the
// last view goes, so a view never sees the next allocation's bytes.
struct Buffer {
  std::shared_ptr<CachingPool> pool;
  Device device;
  void* ptr = nullptr;
  size_t nbytes = 0;
  uintptr_t stream = 0;
  bool pinned = false;
  bool freed = false;     // free() or the end of a with block: unusable from Python
  bool released = false;  // the memory went back to the pool
  int64_t views = 0;
  // Pool.allocate / core.allocate buffers take free(stream) as a raw handle; the
  // public ones resolve it like every xpuruntime API (xpuruntime._stream.as_stream).
  bool raw_streams = false;
  nb::object device_obj;  // the xpuruntime.Device, made on first use of .device

  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (!released && ptr && pool) (void)pool->deallocate(ptr, reinterpret_cast<void*>(stream));
  }

  void check_live(const char* what) const;
  // free(): ordered after the work queued on `on_stream`; deferred while views exist.
  void free_on(uintptr_t on_stream);
  // The last view went: the deferred release (errors are dropped: no caller to tell).
  void release_deferred() noexcept;
};

// A new Python Buffer of `nbytes` from `pool` on `stream`.
nb::object new_buffer(const std::shared_ptr<CachingPool>& pool, size_t nbytes, uintptr_t stream, bool pinned,
                      bool raw_streams, nb::handle device_obj);

// The owner a view of `owner`'s memory should hold: for a Buffer, a capsule
// that counts as one of its views (InvalidArgumentError when it was freed);
// anything else as it is.
nb::object view_owner(nb::handle owner);

// Python objects the fast path needs (xpuruntime._device / memory), imported on
// first use and kept for the process.
struct PyHooks {
  PyTypeObject* device_type = nullptr;  // xpuruntime.Device
  PyObject* resolve = nullptr;          // memory._resolve(stream, device) -> (Device, handle)
  PyObject* free_stream = nullptr;      // memory._free_stream_handle(stream, Device) -> handle
  PyObject* check_nbytes = nullptr;     // memory._check_nbytes(nbytes, device) -> int
  PyObject* kind = nullptr;             // interned attribute names
  PyObject* index = nullptr;
  PyObject* code = nullptr;
};
const PyHooks& hooks();
nb::object make_device_object(Device d);  // an xpuruntime.Device

void bind_buffer(nb::module_& m);
void bind_allocate_fast(nb::module_& m);
void bind_pools(nb::module_& m);
void bind_arrays(nb::module_& m);
void bind_devices(nb::module_& m);
void bind_streams(nb::module_& m);

}  // namespace xpu::python
