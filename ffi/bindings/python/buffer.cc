// xpuruntime.memory.Buffer: one allocation from a pool, its views, fill and check.
#include <nanobind/stl/string.h>

#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/memory/copy.h"

namespace xpu::python {

void Buffer::check_live(const char* what) const {
  if (freed)
    throw_if_error(InvalidArgument("Buffer.", what, ": the buffer was freed (", nbytes, " bytes on ",
                                   device_kind_name(device.kind), ':', device.index, ")"));
}

void Buffer::free_on(uintptr_t on_stream) {
  stream = on_stream;
  freed = true;
  if (views > 0) return;  // the last view returns the memory (release_deferred)
  released = true;
  throw_if_error(pool_call(pool_may_block(*pool, pinned),
                           [&] { return pool->deallocate(ptr, reinterpret_cast<void*>(stream)); }));
}

void Buffer::release_deferred() noexcept {
  if (released || !freed || views > 0) return;
  released = true;
  (void)pool->deallocate(ptr, reinterpret_cast<void*>(stream));
}

nb::object new_buffer(const std::shared_ptr<CachingPool>& pool, size_t nbytes, uintptr_t stream, bool pinned,
                      bool raw_streams, nb::handle device_obj) {
  // The instance is made first, so that a failed allocation leaves nothing to undo.
  static const nb::handle type = nb::type<Buffer>();  // a lookup by type_info otherwise
  nb::object o = nb::inst_alloc(type);
  void* ptr = nullptr;
  throw_if_error(pool_call(pool_may_block(*pool, pinned),
                           [&] { return pool->allocate(nbytes, reinterpret_cast<void*>(stream), &ptr); }));
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

nb::object view_owner(nb::handle owner) {
  if (!nb::isinstance<Buffer>(owner)) return nb::borrow(owner);
  Buffer& b = nb::cast<Buffer&>(owner);
  b.check_live("view");
  ++b.views;
  // Capsule destructors run when the last reference goes, with the GIL held.
  auto* keep = new nb::object(nb::borrow(owner));
  return nb::capsule(keep, [](void* p) noexcept {
    auto* o = static_cast<nb::object*>(p);
    Buffer* buf = nb::inst_ptr<Buffer>(*o);
    --buf->views;
    buf->release_deferred();
    delete o;
  });
}

namespace {

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
  b.free_on(s);
}

// fill / count_not_equal take one byte: an int in 0..255 (not a bool, not a float).
unsigned char byte_value(const char* method, nb::handle value) {
  PyObject* v = value.ptr();
  if (PyBool_Check(v) || !PyIndex_Check(v))
    throw_type_error(str_cat("Buffer.", method, ": 'value' must be an int in 0..255 (one byte), got ",
                             nb::inst_name(value).c_str()));
  nb::object i = nb::steal(PyNumber_Index(v));
  if (!i.is_valid()) throw nb::python_error();
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow || n < 0 || n > 255)
    throw_if_error(InvalidArgument("Buffer.", method, ": 'value' must be a byte in 0..255, got ",
                                   nb::str(i).c_str()));
  return static_cast<unsigned char>(n);
}

}  // namespace

void bind_buffer(nb::module_& m) {
  nb::class_<Buffer>(m, "Buffer", nb::is_weak_referenceable(),
                     "``nbytes`` of memory on ``device``, ordered on ``stream`` (a cudaStream_t handle; 0 on "
                     "the CPU).\n\nMade by ``xpuruntime.memory.allocate`` / ``allocate_pinned``. Goes back to "
                     "the pool on ``free()``, at the end of a ``with`` block or when garbage collected, "
                     "ordered after the work queued on its stream. Using a freed buffer raises "
                     "``xpuruntime.InvalidArgumentError``; it never touches memory. Views of the buffer "
                     "(``xpuruntime.Array`` and the DLPack consumers of an Array) keep its memory: "
                     "``free()`` while views exist returns it to the pool when the last view goes.")
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
      .def_prop_ro("freed", [](const Buffer& b) { return b.freed; },
                   "Whether free() was called (or the with block ended).")
      .def_prop_ro("views", [](const Buffer& b) { return b.views; },
                   "How many xpuruntime.Array views of the memory are alive (an Array stays alive while "
                   "any DLPack consumer of it does); a freed buffer returns to the pool when this reaches 0.")
      .def("free", &buffer_free, nb::arg("stream").none() = nb::none(),
           "Returns the memory to the pool, ordered after the work queued on `stream` "
           "(an xpuruntime.Stream, a handle or a __cuda_stream__ object; default: the allocation's stream). "
           "With views alive, the memory goes back when the last one does.")
      .def("fill", [](const Buffer& b, nb::handle value) {
             b.check_live("fill");
             const unsigned char v = byte_value("fill", value);
             nogil([&] {
               return memory::fill_bytes(b.ptr, b.device, v, b.nbytes, reinterpret_cast<void*>(b.stream));
             });
           }, nb::arg("value").none(), nb::sig("def fill(self, value: int) -> None"),
           "Sets every byte to `value`, an int in 0..255 (stream-ordered on CUDA).")
      .def("count_not_equal", [](const Buffer& b, nb::handle value) {
             b.check_live("count_not_equal");
             const unsigned char v = byte_value("count_not_equal", value);
             size_t bad = 0;
             nogil([&] {
               return memory::count_bytes_not_equal(b.ptr, b.device, v, b.nbytes,
                                                    reinterpret_cast<void*>(b.stream), &bad);
             });
             return bad;
           }, nb::arg("value").none(), nb::sig("def count_not_equal(self, value: int) -> int"),
           "How many bytes differ from `value`, an int in 0..255 (waits for the buffer's stream on CUDA).")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); }, nb::sig("def __enter__(self) -> Buffer"))
      .def("__exit__", [](Buffer& b, nb::handle, nb::handle, nb::handle) {
             if (!b.freed) b.free_on(b.stream);
           }, nb::arg("exc_type").none(), nb::arg("exc_value").none(), nb::arg("traceback").none())
      .def("__repr__", [](nb::handle self) {
             const Buffer& b = nb::cast<const Buffer&>(self);
             nb::object dev = nb::str(self.attr("device"));
             if (b.freed)
               return nb::str("<xpuruntime.memory.Buffer {} bytes on {}, freed>").format(b.nbytes, dev);
             return nb::str("<xpuruntime.memory.Buffer {} bytes on {} at 0x{:x}, stream 0x{:x}>")
                 .format(b.nbytes, dev, reinterpret_cast<uintptr_t>(b.ptr), b.stream);
           });
}

}  // namespace xpu::python
