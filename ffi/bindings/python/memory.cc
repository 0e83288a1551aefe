// Memory, devices, streams and events for the Python runtime API
// (xpuruntime.memory, xpuruntime.Device, xpuruntime.Stream / Event).
// Every call that may block (pool mutex, CUDA synchronization) releases the GIL.
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
  Status s;
  {
    nb::gil_scoped_release release;
    s = memory::device_pool(d, &p);
  }
  throw_if_error(s);
  return std::shared_ptr<CachingPool>(p, [](CachingPool*) {});  // lives for the process
}

// One allocation. Freed by free(), by the context manager, or when collected;
// always stream-ordered on the stream given last (free's, else the allocation's).
struct Buffer {
  std::shared_ptr<CachingPool> pool;
  Device device;
  void* ptr = nullptr;
  size_t nbytes = 0;
  uintptr_t stream = 0;
  bool pinned = false;
  bool freed = false;

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
  void free(std::optional<uintptr_t> on_stream) {
    check_live("free");
    if (on_stream) stream = *on_stream;
    Status s;
    {
      nb::gil_scoped_release release;
      s = pool->deallocate(ptr, reinterpret_cast<void*>(stream));
    }
    freed = true;
    throw_if_error(s);
  }
};

std::unique_ptr<Buffer> pool_allocate(const std::shared_ptr<CachingPool>& pool, int64_t nbytes,
                                      uintptr_t stream, bool pinned) {
  if (nbytes < 0) throw_if_error(InvalidArgument("allocate: negative size ", nbytes));
  auto b = std::make_unique<Buffer>();
  void* ptr = nullptr;
  Status s;
  {
    nb::gil_scoped_release release;
    s = pool->allocate(static_cast<size_t>(nbytes), reinterpret_cast<void*>(stream), &ptr);
  }
  throw_if_error(s);
  b->pool = pool;
  b->device = pool->device();
  b->ptr = ptr;
  b->nbytes = static_cast<size_t>(nbytes);
  b->stream = stream;
  b->pinned = pinned;
  return b;
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

// Runs `fn` (returning Status) without the GIL and raises its error.
template <typename Fn>
void nogil(Fn&& fn) {
  Status s;
  {
    nb::gil_scoped_release release;
    s = fn();
  }
  throw_if_error(s);
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
  nb::class_<Buffer>(m, "Buffer", "One allocation from an xpuruntime memory pool.")
      .def_prop_ro("ptr", [](const Buffer& b) { b.check_live("ptr"); return reinterpret_cast<uintptr_t>(b.ptr); })
      .def_prop_ro("nbytes", [](const Buffer& b) { return b.nbytes; })
      .def_prop_ro("device_kind", [](const Buffer& b) { return std::string(device_kind_name(b.device.kind)); })
      .def_prop_ro("device_index", [](const Buffer& b) { return b.device.index; })
      .def_prop_ro("stream", [](const Buffer& b) { return b.stream; })
      .def_prop_ro("pinned", [](const Buffer& b) { return b.pinned; })
      .def_prop_ro("freed", [](const Buffer& b) { return b.freed; })
      .def("free", &Buffer::free, nb::arg("stream").none() = nb::none(),
           "Returns the memory to the pool, ordered after the work queued on `stream` "
           "(default: the allocation's stream).")
      .def("fill", [](const Buffer& b, int value) {
             b.check_live("fill");
             nogil([&] { return buffer_fill(b, value); });
           }, nb::arg("value"), "Sets every byte to `value` (stream-ordered on CUDA).")
      .def("count_not_equal", [](const Buffer& b, int value) {
             b.check_live("count_not_equal");
             size_t bad = 0;
             nogil([&] { return buffer_count_not_equal(b, value, &bad); });
             return bad;
           }, nb::arg("value"), "How many bytes differ from `value` (waits for the stream on CUDA).");

  nb::class_<PoolHandle>(m, "Pool", "A caching memory pool (a device's, or a private one for tests).")
      .def("allocate", [](const PoolHandle& p, int64_t nbytes, uintptr_t stream) {
             return pool_allocate(p.pool, nbytes, stream, false);
           }, nb::arg("nbytes"), nb::arg("stream") = 0)
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
          return pool_allocate(global_pool(make_device(kind, index)), nbytes, stream, false);
        }, nb::arg("nbytes"), nb::arg("device_kind"), nb::arg("device_index"), nb::arg("stream"));
  m.def("allocate_pinned", [](int64_t nbytes) {
          CachingPool* p = nullptr;
          bool pinned = false;
          nogil([&] { return memory::pinned_pool(&p, &pinned); });
          return pool_allocate(std::shared_ptr<CachingPool>(p, [](CachingPool*) {}), nbytes, 0, pinned);
        }, nb::arg("nbytes"), "Page-locked host memory (plain host memory without CUDA).");
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
