// Pools from Python: a device's pool or a private test pool, statistics,
// snapshots and limits (xpuruntime.memory.stats / snapshot / set_limit, and the
// tests' _core.test_pool).
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings/python/runtime_bindings.h"
#include "xpuruntime/memory/device_pools.h"

namespace xpu::python {

Device make_device(const std::string& kind, int index) {
  if (kind == "cpu") return {DeviceKind::kCPU, index};
  if (kind == "cuda") return {DeviceKind::kCUDA, index};
  throw_if_error(InvalidArgument("unknown device kind '", kind, "' (expected 'cpu' or 'cuda')"));
  return {};
}

std::shared_ptr<CachingPool> global_pool(Device d) {
  CachingPool* p = nullptr;
  nogil([&] { return memory::device_pool(d, &p); });
  return std::shared_ptr<CachingPool>(p, [](CachingPool*) {});  // lives for the process
}

namespace {

// A pool as Python sees it: a device's pool (not owned) or a private test pool.
struct PoolHandle {
  std::shared_ptr<CachingPool> pool;
  memory::ManualEventHostResource* manual = nullptr;  // test pools only
};

size_t checked_nbytes(int64_t nbytes) {
  if (nbytes < 0) throw_if_error(InvalidArgument("allocate: negative size ", nbytes));
  return static_cast<size_t>(nbytes);
}

nb::object pool_allocate(const std::shared_ptr<CachingPool>& pool, int64_t nbytes, uintptr_t stream, bool pinned,
                         bool raw_streams) {
  return new_buffer(pool, checked_nbytes(nbytes), stream, pinned, raw_streams, nb::handle());
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

}  // namespace

void bind_pools(nb::module_& m) {
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
}

}  // namespace xpu::python
