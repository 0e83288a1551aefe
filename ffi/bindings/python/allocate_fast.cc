// The CPython fast path of xpuruntime.memory.allocate: the common call (an int
// size, no stream, no device or an xpuruntime.Device) never leaves C++.
//
// The current device and current streams live in xpuruntime._device / _stream
// (thread-local Python state). Those modules copy them here, thread_local too,
// whenever they change, so that allocate() resolves its defaults without
// calling into Python. Anything else goes through memory._resolve /
// _check_nbytes so that conversions and errors stay as in Python.
#include <nanobind/stl/string.h>

#include <vector>

#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/runtime.h"

namespace xpu::python {
namespace {

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

nb::object allocate_fast(nb::handle nbytes, nb::handle stream, nb::handle device) {
  const PyHooks& h = hooks();
  long long n = -1;
  if (PyLong_CheckExact(nbytes.ptr())) {
    int overflow = 0;
    n = PyLong_AsLongLongAndOverflow(nbytes.ptr(), &overflow);
    if (overflow) n = -1;
  }
  if (n < 0) {  // negative, huge or not an int: Python's checks and messages
    nb::object converted =
        nb::steal(PyObject_CallFunctionObjArgs(h.check_nbytes, nbytes.ptr(), device.ptr(), nullptr));
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
    device_obj = nb::handle(NB_TUPLE_GET_ITEM(resolved.ptr(), 0));
    code = device_code(device_obj);
    handle = nb::cast<uintptr_t>(nb::handle(NB_TUPLE_GET_ITEM(resolved.ptr(), 1)));
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
    "Raises ``xpuruntime.InvalidArgumentError`` for a size that is not an int >= 0 or a stream of "
    "another device, and ``xpuruntime.OutOfMemoryError`` (a MemoryError) with the request, allocated, "
    "reserved and device-free bytes when the pool cannot serve it.";

PyObject* allocate_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static PyObject* const names[3] = {PyUnicode_InternFromString("nbytes"), PyUnicode_InternFromString("stream"),
                                     PyUnicode_InternFromString("device")};
  PyObject* values[3] = {nargs > 0 ? args[0] : nullptr, nullptr, nullptr};
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "allocate() takes 1 positional argument but %zd were given", nargs);
    return nullptr;
  }
  const Py_ssize_t nkw = kwnames ? NB_TUPLE_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* key = NB_TUPLE_GET_ITEM(kwnames, i);
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

}  // namespace

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

nb::object make_device_object(Device d) {
  const PyHooks& h = hooks();
  return nb::borrow(reinterpret_cast<PyObject*>(h.device_type))(std::string(device_kind_name(d.kind)), d.index);
}

void bind_allocate_fast(nb::module_& m) {
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
}

}  // namespace xpu::python
