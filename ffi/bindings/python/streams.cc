// xpuruntime.Stream / Event over CUDA handles (stream.h does the work; the
// Python layer makes CPU streams and events no-ops).
#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/stream.h"

namespace xpu::python {
namespace {
void* as_ptr(uintptr_t h) { return reinterpret_cast<void*>(h); }
}  // namespace

void bind_streams(nb::module_& m) {
  m.def("stream_create", [](int index, int priority) {
          void* s = nullptr;
          throw_if_error(runtime::stream_create(index, priority, &s));
          return reinterpret_cast<uintptr_t>(s);
        }, nb::arg("device_index"), nb::arg("priority"));
  m.def("stream_destroy", [](int index, uintptr_t s) {
          nogil([&] {  // synchronizes the stream first
            runtime::stream_destroy(index, as_ptr(s));
            return Status::Ok();
          });
        }, nb::arg("device_index"), nb::arg("stream"));
  m.def("stream_synchronize", [](int index, uintptr_t s) {
          nogil([&] { return runtime::stream_synchronize(index, as_ptr(s)); });
        }, nb::arg("device_index"), nb::arg("stream"));
  m.def("stream_query", [](int index, uintptr_t s) {
          bool done = false;
          throw_if_error(runtime::stream_query(index, as_ptr(s), &done));
          return done;
        }, nb::arg("device_index"), nb::arg("stream"));
  m.def("stream_wait_event", [](int index, uintptr_t s, uintptr_t e) {
          throw_if_error(runtime::stream_wait_event(index, as_ptr(s), as_ptr(e)));
        }, nb::arg("device_index"), nb::arg("stream"), nb::arg("event"));
  m.def("event_create", [](int index, bool timing) {
          void* e = nullptr;
          throw_if_error(runtime::event_create(index, timing, &e));
          return reinterpret_cast<uintptr_t>(e);
        }, nb::arg("device_index"), nb::arg("timing"));
  m.def("event_destroy", [](int index, uintptr_t e) { runtime::event_destroy(index, as_ptr(e)); },
        nb::arg("device_index"), nb::arg("event"));
  m.def("event_record", [](int index, uintptr_t e, uintptr_t s) {
          throw_if_error(runtime::event_record(index, as_ptr(e), as_ptr(s)));
        }, nb::arg("device_index"), nb::arg("event"), nb::arg("stream"));
  m.def("event_query", [](uintptr_t e) {
          bool done = false;
          throw_if_error(runtime::event_query(as_ptr(e), &done));
          return done;
        }, nb::arg("event"));
  m.def("event_synchronize", [](uintptr_t e) { nogil([&] { return runtime::event_synchronize(as_ptr(e)); }); },
        nb::arg("event"));
  m.def("event_elapsed_ms", [](uintptr_t start, uintptr_t end) {
          float ms = 0;
          throw_if_error(runtime::event_elapsed_ms(as_ptr(start), as_ptr(end), &ms));
          return ms;
        }, nb::arg("start"), nb::arg("end"));
}

}  // namespace xpu::python
