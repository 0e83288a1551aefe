// Memory, devices, streams and events for the Python runtime API
// (xpuruntime.memory, xpuruntime.Device, xpuruntime.Stream / Event).
// Every call that may block (CUDA and pinned pools, CUDA synchronization) releases
// the GIL; host pool calls keep it (see Buffer::may_block).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <optional>
#include <memory>
#include <vector>

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "bindings/python/python_adapter.h"
#include "xpuruntime/memory/pool.h"
#include "xpuruntime/runtime.h"

namespace xpu::python {
namespace {

using memory::CachingPool;

Device make_device(const std::string& kind, int index) {
  if (kind == "cpu") return {DeviceKind::kCPU, index};
  if (kind == "cuda") return {DeviceKind::kCUDA, index};
  throw_if_error(InvalidArgument("unknown device kind '", kind, "' (expected 'cpu' or 'cuda')"));
  return {};
}

// A pool as Python sees it: a device's pool (not owned) or a private test pool.
struct PoolHandle {
  std::shared_ptr<CachingPool> pool;
  memory::ManualEventHostResource* manual = nullptr;  // test pools only
};

std::shared_ptr<CachingPool> global_pool(Device d) {
  CachingPool* p = nullptr;
  nogil([&] { return memory::device_pool(d, &p); });
  return std::shared_ptr<CachingPool>(p, [](CachingPool*) {});  // lives for the process
}

// Runs a pool call, without the GIL where it may wait for the CUDA driver.
template <typename Fn>
Status pool_call(bool release_gil, Fn&& fn) {
  if (!release_gil) return fn();
  nb::gil_scoped_release release;
  return fn();
}

// One allocation. Freed by free(), by the context manager, or when collected;
// always stream-ordered on the stream given last (free's, else the allocation's).
// This is xpuruntime.memory.Buffer itself: a Python wrapper around it doubled
// the cost of an allocate+free pair (issue #3).
struct Buffer {
  std::shared_ptr<CachingPool> pool;
  Device device;
  void* ptr = nullptr;
  size_t nbytes = 0;
  uintptr_t stream = 0;
  bool pinned = false;
  bool freed = false;
  // Pool.allocate / core.allocate buffers take free(stream) as a raw handle; the
  // public ones resolve it like every xpuruntime API (xpuruntime._stream.as_stream).
  bool raw_streams = false;
  nb::object device_obj;  // the xpuruntime.Device, made on first use of .device

  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (!freed && ptr && pool) (void)pool->deallocate(ptr, reinterpret_cast<void*>(stream));
  }

  void check_live(const char* what) const {
    if (freed)
      throw_if_error(InvalidArgument("Buffer.", what, ": the buffer was freed (", nbytes, " bytes on ",
                                     device_kind_name(device.kind), ':', device.index, ")"));
  }
  // Host pools only run short host code under their mutex, so keeping the GIL
  // there saves a release and reacquire per call; CUDA and pinned pools may
  // wait in the driver (a new segment, an event) and let other threads run.
  bool may_block() const { return device.kind != DeviceKind::kCPU || pinned; }

  void release(uintptr_t on_stream) {
    stream = on_stream;
    const Status s = pool_call(may_block(), [&] { return pool->deallocate(ptr, reinterpret_cast<void*>(stream)); });
    freed = true;
    throw_if_error(s);
  }
};

// ---- the Python side of the fast path ----
//
// The current device and current streams live in xpuruntime._device / _stream
// (thread-local Python state). Those modules copy them here, thread_local too,
// whenever they change, so that allocate() resolves its defaults without
// calling into Python.
constexpr int kDeviceUnset = -2;  // device codes: -1 cpu, >= 0 a CUDA index
struct ThreadDefaults {
  int device = kDeviceUnset;
  std::vector<uintptr_t> cuda_streams;  // current stream handle per CUDA index; 0 by default
};
ThreadDefaults& thread_defaults() {
  thread_local ThreadDefaults t;
  return t;
}

int cuda_count_cached() {
  static const int n = runtime::cuda_device_count();  // fixed for the process
  return n;
}

int current_device_code() {
  const int d = thread_defaults().device;
  if (d != kDeviceUnset) return d;
  return cuda_count_cached() > 0 ? 0 : -1;  // as xpuruntime.get_device()
}

uintptr_t current_stream_handle(int code) {
  if (code < 0) return 0;  // CPU allocations are not stream-ordered
  const auto& s = thread_defaults().cuda_streams;
  return static_cast<size_t>(code) < s.size() ? s[code] : 0;
}

Device device_of(int code) { return code < 0 ? Device{DeviceKind::kCPU, 0} : Device{DeviceKind::kCUDA, code}; }

// Python objects the fast path needs, imported on first use and kept for the
// process (deliberately never released: no destructor may run after Python exits).
struct PyHooks {
  PyTypeObject* device_type = nullptr;  // xpuruntime.Device
  PyObject* resolve = nullptr;          // memory._resolve(stream, device) -> (Device, handle)
  PyObject* free_stream = nullptr;      // memory._free_stream_handle(stream, Device) -> handle
  PyObject* check_nbytes = nullptr;     // memory._check_nbytes(nbytes) -> int
  PyObject* kind = nullptr;             // interned attribute names
  PyObject* index = nullptr;
  PyObject* code = nullptr;
};
const PyHooks& hooks() {
  static PyHooks h;
  if (!h.device_type) {
    nb::object dev = nb::module_::import_("xpuruntime._device").attr("Device");
    nb::object mem = nb::module_::import_("xpuruntime.memory");
    h.resolve = nb::object(mem.attr("_resolve")).release().ptr();
    h.free_stream = nb::object(mem.attr("_free_stream_handle")).release().ptr();
    h.check_nbytes = nb::object(mem.attr("_check_nbytes")).release().ptr();
    h.kind = PyUnicode_InternFromString("kind");
    h.index = PyUnicode_InternFromString("index");
    h.code = PyUnicode_InternFromString("_code");
    h.device_type = reinterpret_cast<PyTypeObject*>(dev.release().ptr());  // set last: marks h ready
  }
  return h;
}

// The device code of an xpuruntime.Device: its `_code`, else from kind and index.
int device_code(nb::handle dev) {
  const PyHooks& h = hooks();
  if (PyObject* c = PyObject_GetAttr(dev.ptr(), h.code)) {
    const long v = PyLong_Check(c) ? PyLong_AsLong(c) : -3;
    Py_DECREF(c);
    if (v >= -1) return static_cast<int>(v);
  }
  PyErr_Clear();
  nb::object kind = nb::steal(PyObject_GetAttr(dev.ptr(), h.kind));
  if (!kind.is_valid()) throw nb::python_error();
  if (PyUnicode_Check(kind.ptr()) && PyUnicode_CompareWithASCIIString(kind.ptr(), "cpu") == 0) return -1;
  nb::object index = nb::steal(PyObject_GetAttr(dev.ptr(), h.index));
  if (!index.is_valid()) throw nb::python_error();
  return nb::cast<int>(index);
}

nb::object make_device_object(Device d) {
  const PyHooks& h = hooks();
  return nb::borrow(reinterpret_cast<PyObject*>(h.device_type))(std::string(device_kind_name(d.kind)), d.index);
}

// Pools live for the process, so each one's shared_ptr (no-op deleter) is made
// once. Guarded by the GIL, which every caller holds.
constexpr int kCachedCudaPools = 64;
std::shared_ptr<CachingPool> global_pool_cached(int code) {
  static std::shared_ptr<CachingPool> cpu, cuda[kCachedCudaPools];
  if (code >= kCachedCudaPools) return global_pool(device_of(code));
  std::shared_ptr<CachingPool>& slot = code < 0 ? cpu : cuda[code];
  if (!slot) slot = global_pool(device_of(code));  // raises for an invalid CUDA index
  return slot;
}

// One Python Buffer: the instance is made first, so that a failed allocation
// leaves nothing to undo.
nb::object new_buffer(const std::shared_ptr<CachingPool>& pool, size_t nbytes, uintptr_t stream, bool pinned,
                      bool raw_streams, nb::handle device_obj) {
  static const nb::handle type = nb::type<Buffer>();  // a lookup by type_info otherwise
  nb::object o = nb::inst_alloc(type);
  void* ptr = nullptr;
  const bool may_block = pool->device().kind != DeviceKind::kCPU || pinned;  // as Buffer::may_block
  throw_if_error(pool_call(may_block, [&] { return pool->allocate(nbytes, reinterpret_cast<void*>(stream), &ptr); }));
  Buffer* b = new (nb::inst_ptr<Buffer>(o)) Buffer();
  b->pool = pool;
  b->device = pool->device();
  b->ptr = ptr;
  b->nbytes = nbytes;
  b->stream = stream;
  b->pinned = pinned;
  b->raw_streams = raw_streams;
  if (device_obj.is_valid()) b->device_obj = nb::borrow(device_obj);
  nb::inst_mark_ready(o);
  return o;
}

size_t checked_nbytes(int64_t nbytes) {
  if (nbytes < 0) throw_if_error(InvalidArgument("allocate: negative size ", nbytes));
  return static_cast<size_t>(nbytes);
}

nb::object pool_allocate(const std::shared_ptr<CachingPool>& pool, int64_t nbytes, uintptr_t stream, bool pinned,
                         bool raw_streams) {
  return new_buffer(pool, checked_nbytes(nbytes), stream, pinned, raw_streams, nb::handle());
}

// xpuruntime.memory.allocate. The common call - an int size, no stream, no device
// or an xpuruntime.Device - never leaves C++; anything else goes through
// memory._resolve / _check_nbytes so that conversions and errors stay as in Python.
nb::object allocate_fast(nb::handle nbytes, nb::handle stream, nb::handle device) {
  const PyHooks& h = hooks();
  long long n = -1;
  if (PyLong_CheckExact(nbytes.ptr())) {
    int overflow = 0;
    n = PyLong_AsLongLongAndOverflow(nbytes.ptr(), &overflow);
    if (overflow) n = -1;
  }
  nb::object converted;
  if (n < 0) {  // negative, huge or not an int: Python's checks and messages
    converted = nb::steal(PyObject_CallOneArg(h.check_nbytes, nbytes.ptr()));
    if (!converted.is_valid()) throw nb::python_error();
    int overflow = 0;
    n = PyLong_AsLongLongAndOverflow(converted.ptr(), &overflow);
    if (overflow || n < 0) throw_if_error(InvalidArgument("allocate: size ", nb::str(converted).c_str(), " is too large"));
  }
  int code;
  uintptr_t handle;
  nb::handle device_obj;
  nb::object resolved;
  if (stream.is_none() && (device.is_none() || Py_TYPE(device.ptr()) == h.device_type)) {
    code = device.is_none() ? current_device_code() : device_code(device);
    handle = current_stream_handle(code);
    device_obj = device.is_none() ? nb::handle() : device;
  } else {
    resolved = nb::steal(PyObject_CallFunctionObjArgs(h.resolve, stream.ptr(), device.ptr(), nullptr));
    if (!resolved.is_valid()) throw nb::python_error();
    device_obj = nb::handle(PyTuple_GET_ITEM(resolved.ptr(), 0));
    code = device_code(device_obj);
    handle = nb::cast<uintptr_t>(nb::handle(PyTuple_GET_ITEM(resolved.ptr(), 1)));
  }
  return new_buffer(global_pool_cached(code), static_cast<size_t>(n), handle, false, false, device_obj);
}

// allocate_fast as a METH_FASTCALL | METH_KEYWORDS builtin: nanobind's general
// keyword-argument dispatch cost about as much as the rest of the call.
constexpr const char* kAllocateDoc =
    "allocate_buffer(nbytes, *, stream=None, device=None)\n--\n\n"
    "``nbytes`` (an int >= 0; the Buffer holds raw bytes, no shape or dtype) from ``device``'s pool "
    "(default: the calling thread's current device), usable by work queued on ``stream`` (default: the "
    "device's current stream). Returns an ``xpuruntime.memory.Buffer``.\n\n"
    "Raises ``xpuruntime.InvalidArgumentError`` for a negative size or a stream of another device, and "
    "``xpuruntime.OutOfMemoryError`` (a MemoryError) with the request, allocated, reserved and "
    "device-free bytes when the pool cannot serve it.";

PyObject* allocate_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static PyObject* const names[3] = {PyUnicode_InternFromString("nbytes"), PyUnicode_InternFromString("stream"),
                                     PyUnicode_InternFromString("device")};
  PyObject* values[3] = {nargs > 0 ? args[0] : nullptr, nullptr, nullptr};
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "allocate() takes 1 positional argument but %zd were given", nargs);
    return nullptr;
  }
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    int slot = -1;
    for (int j = 0; j < 3 && slot < 0; ++j)  // interned names match by pointer; others by value
      if (key == names[j]) slot = j;
    for (int j = 0; j < 3 && slot < 0; ++j)
      if (PyUnicode_Compare(key, names[j]) == 0) slot = j;
    if (slot < 0 || values[slot]) {
      PyErr_Format(PyExc_TypeError, slot < 0 ? "allocate() got an unexpected keyword argument '%U'"
                                             : "allocate() got multiple values for argument '%U'", key);
      return nullptr;
    }
    values[slot] = args[nargs + i];
  }
  if (!values[0]) {
    PyErr_SetString(PyExc_TypeError, "allocate() missing required argument 'nbytes'");
    return nullptr;
  }
  try {
    return allocate_fast(values[0], values[1] ? values[1] : Py_None, values[2] ? values[2] : Py_None)
        .release()
        .ptr();
  } catch (nb::python_error& e) {
    e.restore();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {  // e.g. a failed nb::cast in the slow path
    PyErr_SetString(PyExc_TypeError, e.what());
  }
  return nullptr;
}

void buffer_free(Buffer& b, nb::handle on_stream) {
  b.check_live("free");
  uintptr_t s = b.stream;
  if (!on_stream.is_none()) {
    if (b.raw_streams) {
      s = nb::cast<uintptr_t>(on_stream);
    } else {
      nb::object dev = b.device_obj.is_valid() ? b.device_obj : make_device_object(b.device);
      nb::object h = nb::steal(PyObject_CallFunctionObjArgs(hooks().free_stream, on_stream.ptr(), dev.ptr(), nullptr));
      if (!h.is_valid()) throw nb::python_error();
      s = nb::cast<uintptr_t>(h);
    }
  }
  b.release(s);
}

#if XPURUNTIME_WITH_CUDA
Status cuda_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  (void)cudaGetLastError();  // clear, so that later calls do not see this failure
  return Error(StatusCode::kInternal, what, " failed: ", cudaGetErrorString(err));
}
#endif

Status no_cuda(const char* what) {
  return Error(StatusCode::kUnimplemented, what, ": this build of xpuruntime has no CUDA support");
}

void check_cuda_index(int index) {
  const int n = runtime::cuda_device_count();
  if (index < 0 || index >= n)
    throw_if_error(InvalidArgument("invalid CUDA device index ", index, " (", n, " CUDA device",
                                   n == 1 ? "" : "s", " visible)"));
}

// Byte fill / check for tests and scratch initialization.
Status buffer_fill(const Buffer& b, int value) {
  if (b.device.kind == DeviceKind::kCPU) {
    std::memset(b.ptr, value, b.nbytes);
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  runtime::DeviceGuard guard(b.device);
  return cuda_check(cudaMemsetAsync(b.ptr, value, b.nbytes, reinterpret_cast<cudaStream_t>(b.stream)),
                    "cudaMemsetAsync");
#else
  return no_cuda("fill");
#endif
}

Status buffer_count_not_equal(const Buffer& b, int value, size_t* bad) {
  *bad = 0;
  const auto v = static_cast<unsigned char>(value);
  auto count = [&](const unsigned char* p) {
    for (size_t i = 0; i < b.nbytes; ++i) *bad += p[i] != v;
  };
  if (b.device.kind == DeviceKind::kCPU) {
    count(static_cast<const unsigned char*>(b.ptr));
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  runtime::DeviceGuard guard(b.device);
  std::vector<unsigned char> host(b.nbytes);
  auto stream = reinterpret_cast<cudaStream_t>(b.stream);
  XPU_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(host.data(), b.ptr, b.nbytes, cudaMemcpyDeviceToHost, stream),
                                 "cudaMemcpyAsync"));
  XPU_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
  count(host.data());
  return Status::Ok();
#else
  return no_cuda("verify");
#endif
}

nb::dict stats_dict(const memory::PoolStats& s) {
  nb::dict d;
  auto put = [&](const char* name, const memory::Counter& c) {
    d[name] = c.current;
    d[(std::string(name) + "_peak").c_str()] = c.peak;
  };
  put("requested_bytes", s.requested);
  put("allocated_bytes", s.allocated);
  put("active_bytes", s.active);
  put("reserved_bytes", s.reserved);
  d["alloc_count"] = s.alloc_count;
  d["free_count"] = s.free_count;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["oom_count"] = s.oom_count;
  d["upstream_allocs"] = s.upstream_allocs;
  d["upstream_frees"] = s.upstream_frees;
  d["segments"] = s.segments;
  d["free_blocks"] = s.free_blocks;
  d["pending_events"] = s.pending_events;
  d["limit"] = s.limit;
  return d;
}

nb::list snapshot_list(const std::vector<memory::SegmentInfo>& segs) {
  nb::list out;
  for (const auto& seg : segs) {
    nb::list blocks;
    for (const auto& b : seg.blocks) {
      nb::dict bd;
      bd["ptr"] = b.ptr;
      bd["size"] = b.size;
      bd["free"] = b.free;
      bd["any_stream"] = b.any_stream;
      bd["stream"] = b.stream;
      blocks.append(bd);
    }
    nb::dict sd;
    sd["ptr"] = seg.ptr;
    sd["size"] = seg.size;
    sd["small"] = seg.small;
    sd["blocks"] = blocks;
    out.append(sd);
  }
  return out;
}

// Memory copy between any two devices (stream-ordered on CUDA).
Status copy_bytes(uintptr_t dst, Device dst_dev, uintptr_t src, Device src_dev, size_t nbytes,
                  uintptr_t stream) {
  if (nbytes == 0) return Status::Ok();
  if (dst_dev.kind == DeviceKind::kCPU && src_dev.kind == DeviceKind::kCPU) {
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes);
    return Status::Ok();
  }
#if XPURUNTIME_WITH_CUDA
  runtime::DeviceGuard guard(dst_dev.kind == DeviceKind::kCUDA ? dst_dev : src_dev);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  XPU_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src),
                                                 nbytes, cudaMemcpyDefault, s),
                                 "cudaMemcpyAsync"));
  // A host destination is read by host code right away: wait for the copy.
  if (dst_dev.kind == DeviceKind::kCPU)
    XPU_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize"));
  return Status::Ok();
#else
  return no_cuda("copy");
#endif
}

}  // namespace

void bind_memory(nb::module_& m) {
  nb::class_<Buffer>(m, "Buffer", nb::is_weak_referenceable(),
                     "``nbytes`` of memory on ``device``, ordered on ``stream`` (a cudaStream_t handle; 0 on "
                     "the CPU).\n\nMade by ``xpuruntime.memory.allocate`` / ``allocate_pinned``. Goes back to "
                     "the pool on ``free()``, at the end of a ``with`` block or when garbage collected, "
                     "ordered after the work queued on its stream. Using a freed buffer raises "
                     "``xpuruntime.InvalidArgumentError``; it never touches memory.")
      .def_prop_ro("ptr", [](const Buffer& b) { b.check_live("ptr"); return reinterpret_cast<uintptr_t>(b.ptr); },
                   "Address of the first byte (device memory on CUDA).")
      .def_prop_ro("nbytes", [](const Buffer& b) { return b.nbytes; }, "Requested size in bytes.")
      .def_prop_ro("device", [](Buffer& b) {
             if (!b.device_obj.is_valid()) b.device_obj = make_device_object(b.device);
             return b.device_obj;
           }, nb::sig("def device(self) -> xpuruntime.Device"), "The xpuruntime.Device the memory is on.")
      .def_prop_ro("device_kind", [](const Buffer& b) { return std::string(device_kind_name(b.device.kind)); })
      .def_prop_ro("device_index", [](const Buffer& b) { return b.device.index; })
      .def_prop_ro("stream", [](const Buffer& b) { return b.stream; },
                   "The stream handle frees are ordered on (the allocation's, or the last free's).")
      .def_prop_ro("pinned", [](const Buffer& b) { return b.pinned; }, "Page-locked host memory (allocate_pinned).")
      .def_prop_ro("freed", [](const Buffer& b) { return b.freed; }, "Whether the buffer went back to the pool.")
      .def("free", &buffer_free, nb::arg("stream").none() = nb::none(),
           "Returns the memory to the pool, ordered after the work queued on `stream` "
           "(an xpuruntime.Stream, a handle or a __cuda_stream__ object; default: the allocation's stream).")
      .def("fill", [](const Buffer& b, nb::handle value) {
             b.check_live("fill");
             const int v = nb::cast<int>(nb::int_(value));
             nogil([&] { return buffer_fill(b, v); });
           }, nb::arg("value"), nb::sig("def fill(self, value: int) -> None"),
           "Sets every byte to `value` (stream-ordered on CUDA).")
      .def("count_not_equal", [](const Buffer& b, nb::handle value) {
             b.check_live("count_not_equal");
             const int v = nb::cast<int>(nb::int_(value));
             size_t bad = 0;
             nogil([&] { return buffer_count_not_equal(b, v, &bad); });
             return bad;
           }, nb::arg("value"), nb::sig("def count_not_equal(self, value: int) -> int"),
           "How many bytes differ from `value` (waits for the buffer's stream on CUDA).")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); }, nb::sig("def __enter__(self) -> Buffer"))
      .def("__exit__", [](Buffer& b, nb::handle, nb::handle, nb::handle) {
             if (!b.freed) b.release(b.stream);
           }, nb::arg("exc_type").none(), nb::arg("exc_value").none(), nb::arg("traceback").none())
      .def("__repr__", [](nb::handle self) {
             const Buffer& b = nb::cast<const Buffer&>(self);
             nb::object dev = nb::str(self.attr("device"));
             if (b.freed)
               return nb::str("<xpuruntime.memory.Buffer {} bytes on {}, freed>").format(b.nbytes, dev);
             return nb::str("<xpuruntime.memory.Buffer {} bytes on {} at 0x{:x}, stream 0x{:x}>")
                 .format(b.nbytes, dev, reinterpret_cast<uintptr_t>(b.ptr), b.stream);
           });

  static PyMethodDef allocate_def = {"allocate_buffer", reinterpret_cast<PyCFunction>(
                                          reinterpret_cast<void (*)()>(&allocate_entry)),
                                      METH_FASTCALL | METH_KEYWORDS, kAllocateDoc};
  m.attr("allocate_buffer") = nb::steal(PyCFunction_NewEx(&allocate_def, nullptr, m.attr("__name__").ptr()));
  m.def("_set_thread_device", [](int code) { thread_defaults().device = code; }, nb::arg("code"),
        "Mirror of xpuruntime's current device for this thread (-2: unset, -1: cpu, >= 0: a CUDA index).");
  m.def("_set_thread_stream", [](int index, uintptr_t handle) {
          auto& s = thread_defaults().cuda_streams;
          if (index < 0) return;
          if (static_cast<size_t>(index) >= s.size()) s.resize(static_cast<size_t>(index) + 1, 0);
          s[index] = handle;
        }, nb::arg("cuda_index"), nb::arg("handle"),
        "Mirror of this thread's current stream on one CUDA device (0: the default stream).");

  nb::class_<PoolHandle>(m, "Pool", "A caching memory pool (a device's, or a private one for tests).")
      .def("allocate", [](const PoolHandle& p, int64_t nbytes, uintptr_t stream) {
             return pool_allocate(p.pool, nbytes, stream, false, true);
           }, nb::arg("nbytes"), nb::arg("stream") = 0,
           nb::sig("def allocate(self, nbytes: int, stream: int = 0) -> Buffer"))
      .def("stats", [](const PoolHandle& p) { return stats_dict(p.pool->stats()); })
      .def("snapshot", [](const PoolHandle& p) { return snapshot_list(p.pool->snapshot()); })
      .def("reset_peak_stats", [](const PoolHandle& p) { p.pool->reset_peak_stats(); })
      .def("empty_cache", [](const PoolHandle& p) {
             nb::gil_scoped_release release;
             p.pool->empty_cache();
           })
      .def("set_limit", [](const PoolHandle& p, int64_t bytes) {
             if (bytes < 0) throw_if_error(InvalidArgument("set_limit: negative limit ", bytes));
             p.pool->set_limit(static_cast<size_t>(bytes));
           }, nb::arg("bytes"))
      .def("device_free_bytes", [](const PoolHandle& p) { return p.pool->upstream().device_free_bytes(); })
      .def("device_total_bytes", [](const PoolHandle& p) { return p.pool->upstream().device_total_bytes(); })
      .def_prop_ro("upstream", [](const PoolHandle& p) { return std::string(p.pool->upstream().name()); })
      .def("retire_stream", [](const PoolHandle& p, uintptr_t stream) {
             p.pool->retire_stream(reinterpret_cast<void*>(stream));
           }, nb::arg("stream"), "Forgets a stream about to be destroyed (its work must be done).")
      .def("complete_events", [](const PoolHandle& p) {
             if (!p.manual) throw_if_error(InvalidArgument("complete_events: not a manual-event test pool"));
             memory::complete_all_events(p.manual);
           }, "Test pools: marks every recorded event as done.")
      .def("pending_upstream_events", [](const PoolHandle& p) {
             return p.manual ? memory::pending_event_count(p.manual) : size_t(0);
           });

  m.def("device_pool", [](const std::string& kind, int index) {
          return PoolHandle{global_pool(make_device(kind, index)), nullptr};
        }, nb::arg("device_kind"), nb::arg("device_index"), "The caching pool of one device.");
  m.def("test_pool", [](bool manual_events) {
          PoolHandle h;
          if (manual_events) {
            h.pool = std::make_shared<CachingPool>(memory::make_manual_event_host_resource(&h.manual));
          } else {
            h.pool = std::make_shared<CachingPool>(memory::make_host_resource());
          }
          return h;
        }, nb::arg("manual_events") = false,
        "A private pool over host memory; with manual_events, freed blocks stay pending on their "
        "stream until complete_events() (simulates unfinished stream work without a GPU).");
  m.def("allocate", [](int64_t nbytes, const std::string& kind, int index, uintptr_t stream) {
          return pool_allocate(global_pool(make_device(kind, index)), nbytes, stream, false, true);
        }, nb::arg("nbytes"), nb::arg("device_kind"), nb::arg("device_index"), nb::arg("stream"),
        nb::sig("def allocate(nbytes: int, device_kind: str, device_index: int, stream: int) -> Buffer"),
        "A Buffer from a device's pool on a raw stream handle (xpuruntime.empty's storage).");
  m.def("allocate_pinned", [](int64_t nbytes) {
          CachingPool* p = nullptr;
          bool pinned = false;
          nogil([&] { return memory::pinned_pool(&p, &pinned); });
          return pool_allocate(std::shared_ptr<CachingPool>(p, [](CachingPool*) {}), nbytes, 0, pinned, false);
        }, nb::arg("nbytes"), nb::sig("def allocate_pinned(nbytes: int) -> Buffer"),
        "Page-locked host memory (plain host memory without CUDA).");
  m.def("copy_bytes", [](uintptr_t dst, const std::string& dst_kind, int dst_index, uintptr_t src,
                         const std::string& src_kind, int src_index, size_t nbytes, uintptr_t stream) {
          const Device dd = make_device(dst_kind, dst_index), sd = make_device(src_kind, src_index);
          nogil([&] { return copy_bytes(dst, dd, src, sd, nbytes, stream); });
        });

  // ---- arrays ----
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
          return nb::ndarray<nb::array_api>(reinterpret_cast<void*>(ptr), sizes.size(), sizes.data(), owner,
                                            strides.empty() ? nullptr : strides.data(), dt, dl_device, d.index);
        }, nb::arg("owner"), nb::arg("ptr"), nb::arg("shape"), nb::arg("strides"), nb::arg("code"),
        nb::arg("bits"), nb::arg("device_kind"), nb::arg("device_index"),
        "A DLPack-exporting view of memory kept alive by `owner` (zero-copy).");
  m.def("dlpack_info", [](nb::ndarray<nb::ro> a) {
          const int dev = a.device_type();
          std::string kind;
          if (dev == nb::device::cpu::value || dev == nb::device::cuda_host::value) kind = "cpu";
          else if (dev == nb::device::cuda::value || dev == nb::device::cuda_managed::value) kind = "cuda";
          else throw_if_error(InvalidArgument("unsupported DLPack device type ", dev, " (supported: cpu, cuda)"));
          nb::list shape, strides;
          for (size_t i = 0; i < a.ndim(); ++i) {
            shape.append(a.shape(i));
            strides.append(a.stride(i));
          }
          const nb::dlpack::dtype t = a.dtype();
          if (t.lanes != 1) throw_if_error(InvalidArgument("vector dtypes (lanes=", int(t.lanes), ") are not supported"));
          return nb::make_tuple(reinterpret_cast<uintptr_t>(a.data()), int(t.code), int(t.bits), nb::tuple(shape),
                                nb::tuple(strides), kind, kind == "cpu" ? 0 : int(a.device_id()));
        }, nb::arg("array"), "(ptr, dtype code, bits, shape, strides in elements, device kind, index).");

  // ---- devices ----
  m.def("device_properties", [](int index) {
          check_cuda_index(index);
          nb::dict d;
#if XPURUNTIME_WITH_CUDA
          cudaDeviceProp prop{};
          throw_if_error(cuda_check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties"));
          size_t free_b = 0, total = 0;
          {
            runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
            throw_if_error(cuda_check(cudaMemGetInfo(&free_b, &total), "cudaMemGetInfo"));
          }
          d["name"] = std::string(prop.name);
          d["compute_capability"] = nb::make_tuple(prop.major, prop.minor);
          d["multiprocessor_count"] = prop.multiProcessorCount;
          d["total_memory"] = prop.totalGlobalMem;
          d["free_memory"] = free_b;
          d["l2_cache_size"] = prop.l2CacheSize;
#endif
          return d;
        }, nb::arg("index"));
  m.def("cuda_get_device", []() {
#if XPURUNTIME_WITH_CUDA
          int d = 0;
          if (cudaGetDevice(&d) != cudaSuccess) {
            (void)cudaGetLastError();
            return -1;
          }
          return d;
#else
          return -1;
#endif
        });
  m.def("cuda_set_device", [](int index) {
          check_cuda_index(index);
#if XPURUNTIME_WITH_CUDA
          throw_if_error(cuda_check(cudaSetDevice(index), "cudaSetDevice"));
#endif
        });

  // ---- streams and events (CUDA; the Python layer makes CPU ones no-ops) ----
#if XPURUNTIME_WITH_CUDA
  m.def("stream_create", [](int index, int priority) {
          check_cuda_index(index);
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          int least = 0, greatest = 0;
          throw_if_error(cuda_check(cudaDeviceGetStreamPriorityRange(&least, &greatest),
                                    "cudaDeviceGetStreamPriorityRange"));
          // CUDA: lower numbers are higher priority; clamp into the device's range.
          if (priority > least) priority = least;
          if (priority < greatest) priority = greatest;
          cudaStream_t s = nullptr;
          throw_if_error(cuda_check(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority),
                                    "cudaStreamCreateWithPriority"));
          return reinterpret_cast<uintptr_t>(s);
        }, nb::arg("device_index"), nb::arg("priority"));
  m.def("stream_destroy", [](int index, uintptr_t s) {
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          // Memory still tied to the stream must not record on the dead handle later.
          nogil([&] {
            memory::retire_stream_everywhere(reinterpret_cast<void*>(s));
            return Status::Ok();
          });
          if (cudaStreamDestroy(reinterpret_cast<cudaStream_t>(s)) != cudaSuccess) (void)cudaGetLastError();
        });
  m.def("stream_synchronize", [](int index, uintptr_t s) {
          nogil([&] {
            runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
            return cuda_check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(s)), "cudaStreamSynchronize");
          });
        });
  m.def("stream_query", [](int index, uintptr_t s) {
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          const cudaError_t err = cudaStreamQuery(reinterpret_cast<cudaStream_t>(s));
          if (err == cudaSuccess) return true;
          (void)cudaGetLastError();
          if (err == cudaErrorNotReady) return false;
          throw_if_error(Error(StatusCode::kInternal, "cudaStreamQuery failed: ", cudaGetErrorString(err)));
          return false;
        });
  m.def("stream_wait_event", [](int index, uintptr_t s, uintptr_t e) {
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          throw_if_error(cuda_check(cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(s),
                                                        reinterpret_cast<cudaEvent_t>(e), 0),
                                    "cudaStreamWaitEvent"));
        });
  m.def("event_create", [](int index, bool timing) {
          check_cuda_index(index);
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          cudaEvent_t e = nullptr;
          throw_if_error(cuda_check(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming),
                                    "cudaEventCreate"));
          return reinterpret_cast<uintptr_t>(e);
        });
  m.def("event_destroy", [](int index, uintptr_t e) {
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          if (cudaEventDestroy(reinterpret_cast<cudaEvent_t>(e)) != cudaSuccess) (void)cudaGetLastError();
        });
  m.def("event_record", [](int index, uintptr_t e, uintptr_t s) {
          runtime::DeviceGuard guard({DeviceKind::kCUDA, index});
          throw_if_error(cuda_check(cudaEventRecord(reinterpret_cast<cudaEvent_t>(e), reinterpret_cast<cudaStream_t>(s)),
                                    "cudaEventRecord"));
        });
  m.def("event_query", [](uintptr_t e) {
          const cudaError_t err = cudaEventQuery(reinterpret_cast<cudaEvent_t>(e));
          if (err == cudaSuccess) return true;
          (void)cudaGetLastError();
          if (err == cudaErrorNotReady) return false;
          throw_if_error(Error(StatusCode::kInternal, "cudaEventQuery failed: ", cudaGetErrorString(err)));
          return false;
        });
  m.def("event_synchronize", [](uintptr_t e) {
          nogil([&] { return cuda_check(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(e)), "cudaEventSynchronize"); });
        });
  m.def("event_elapsed_ms", [](uintptr_t start, uintptr_t end) {
          float ms = 0;
          throw_if_error(cuda_check(cudaEventElapsedTime(&ms, reinterpret_cast<cudaEvent_t>(start),
                                                         reinterpret_cast<cudaEvent_t>(end)),
                                    "cudaEventElapsedTime"));
          return ms;
        });
#endif
}

}  // namespace xpu::python
