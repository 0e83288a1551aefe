#include "bindings/python/python_adapter.h"

#include "xpuruntime/memory/pool.h"

namespace xpu::python {
namespace {

// Exception classes created in register_exceptions (module lifetime).
PyObject* g_invalid_argument = nullptr;
PyObject* g_invalid_argument_type = nullptr;
PyObject* g_not_found = nullptr;
PyObject* g_out_of_memory = nullptr;
PyObject* g_runtime = nullptr;

}  // namespace

Status tensor_of(const Array& a, ArrayDims* dims, DenseTensor* out) {
  DenseTensor& t = *out = DenseTensor{};
  if (!a.is_valid()) return Status::Ok();
  const int dev = a.device_type();
  if (dev == nb::device::cpu::value || dev == nb::device::cuda_host::value)
    t.device = {DeviceKind::kCPU, 0};
  else if (dev == nb::device::cuda::value || dev == nb::device::cuda_managed::value)
    t.device = {DeviceKind::kCUDA, static_cast<int>(a.device_id())};
  else
    return InvalidArgument("unsupported DLPack device type ", dev, " (supported: cpu, cuda)");
  dims->shape.resize(a.ndim());
  dims->strides.resize(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) {
    dims->shape[i] = static_cast<int64_t>(a.shape(i));
    dims->strides[i] = static_cast<int64_t>(a.stride(i));
  }
  t.data = const_cast<void*>(static_cast<const void*>(a.data()));
  t.dtype = dtype_from_dlpack(a.dtype());
  t.shape = dims->shape;
  t.strides = dims->strides;
  t.present = true;
  return Status::Ok();
}

DType dtype_from_dlpack(nb::dlpack::dtype t) {
  using code = nb::dlpack::dtype_code;
  if (t.lanes != 1) return DType::kInvalid;
  switch (static_cast<code>(t.code)) {
    case code::Float:
      return t.bits == 32 ? DType::kF32 : t.bits == 16 ? DType::kF16
                                        : t.bits == 64 ? DType::kF64 : DType::kInvalid;
    case code::Bfloat: return t.bits == 16 ? DType::kBF16 : DType::kInvalid;
    case code::Int: return t.bits == 32 ? DType::kI32 : t.bits == 64 ? DType::kI64 : DType::kInvalid;
    case code::UInt: return t.bits == 8 ? DType::kU8 : DType::kInvalid;
    case code::Bool: return DType::kBool;
    default: return DType::kInvalid;
  }
}

nb::dlpack::dtype dlpack_from_dtype(DType t) {
  using code = nb::dlpack::dtype_code;
  auto make = [](code c, int bits) {
    return nb::dlpack::dtype{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1};
  };
  switch (t) {
    case DType::kF32: return make(code::Float, 32);
    case DType::kF16: return make(code::Float, 16);
    case DType::kBF16: return make(code::Bfloat, 16);
    case DType::kF64: return make(code::Float, 64);
    case DType::kI32: return make(code::Int, 32);
    case DType::kI64: return make(code::Int, 64);
    case DType::kBool: return make(code::Bool, 8);
    default: return make(code::UInt, 8);
  }
}

void throw_if_error(const Status& s) {
  if (s.ok()) return;
  PyObject* cls = g_runtime;
  switch (s.code()) {
    case StatusCode::kInvalidArgument: cls = g_invalid_argument; break;
    case StatusCode::kNotFound: cls = g_not_found; break;
    case StatusCode::kOutOfMemory: cls = g_out_of_memory; break;
    default: break;
  }
  if (s.code() == StatusCode::kOutOfMemory) {
    // Pool failures carry their numbers as attributes of the exception.
    const memory::OomInfo info = memory::take_last_oom();
    PyObject* exc = PyObject_CallFunction(cls, "s", s.message().c_str());
    if (exc) {
      auto set = [&](const char* name, PyObject* value) {
        if (value) {
          PyObject_SetAttrString(exc, name, value);
          Py_DECREF(value);
        }
        if (PyErr_Occurred()) PyErr_Clear();
      };
      const bool ok = info.valid && info.message == s.message();
      auto num = [&](size_t v) { return ok ? PyLong_FromSize_t(v) : Py_NewRef(Py_None); };
      set("device", ok ? PyUnicode_FromString(str_cat(device_kind_name(info.device.kind), ':',
                                                      info.device.index).c_str())
                       : Py_NewRef(Py_None));
      set("requested_bytes", num(info.requested));
      set("allocated_bytes", num(info.allocated));
      set("reserved_bytes", num(info.reserved));
      set("device_free_bytes", num(info.device_free));
      set("limit_bytes", num(info.limit));
      PyErr_SetObject(cls, exc);
      Py_DECREF(exc);
      throw nb::python_error();
    }
    PyErr_Clear();
  }
  PyErr_SetString(cls, s.message().c_str());
  throw nb::python_error();
}

void throw_type_error(const std::string& message) {
  PyErr_SetString(g_invalid_argument_type, message.c_str());
  throw nb::python_error();
}

void register_exceptions(nb::module_& m) {
  auto make = [&](const char* name, PyObject* bases) {
    const std::string qual = std::string("xpuruntime._core.") + name;
    PyObject* cls = PyErr_NewException(qual.c_str(), bases, nullptr);
    m.attr(name) = nb::handle(cls);
    return cls;
  };
  PyObject* base = make("Error", PyExc_RuntimeError);
  g_runtime = base;
  g_invalid_argument = make("InvalidArgumentError", nb::make_tuple(nb::handle(base),
                                                                   nb::handle(PyExc_ValueError)).release().ptr());
  // Wrong Python types (a list for an array, a float for a size): in the one
  // vocabulary, and still a TypeError for code that catches that.
  g_invalid_argument_type = make("InvalidArgumentTypeError",
                                 nb::make_tuple(nb::handle(g_invalid_argument),
                                                nb::handle(PyExc_TypeError)).release().ptr());
  g_not_found = make("KernelNotFoundError", nb::make_tuple(nb::handle(base),
                                                           nb::handle(PyExc_LookupError)).release().ptr());
  g_out_of_memory = make("OutOfMemoryError", nb::make_tuple(nb::handle(base),
                                                            nb::handle(PyExc_MemoryError)).release().ptr());
}

}  // namespace xpu::python
