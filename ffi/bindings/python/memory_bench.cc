// Allocation latency measured from C++ (no Python in the loop), for
// benchmarks/bench_memory.py: the xpuruntime pool and, with CUDA, the CUDA
// allocators it is compared against. Each returns nanoseconds per alloc+free pair.
#include <chrono>

#include "bindings/python/python_adapter.h"
#include "xpuruntime/memory/pool.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xpu::python {
namespace {

template <typename Body>
double ns_per_iteration(int64_t iters, Body&& body) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) body();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(iters);
}

double pool_pairs(const std::string& kind, int index, int64_t nbytes, int64_t iters, uintptr_t stream) {
  memory::CachingPool* pool = nullptr;
  const Device dev{kind == "cuda" ? DeviceKind::kCUDA : DeviceKind::kCPU, index};
  throw_if_error(memory::device_pool(dev, &pool));
  void* s = reinterpret_cast<void*>(stream);
  Status failed;
  const double ns = ns_per_iteration(iters, [&] {
    void* p = nullptr;
    Status st = pool->allocate(static_cast<size_t>(nbytes), s, &p);
    if (st.ok()) st = pool->deallocate(p, s);
    if (!st.ok() && failed.ok()) failed = st;
  });
  throw_if_error(failed);
  return ns;
}

#if XPURUNTIME_WITH_CUDA
double cuda_pairs(const std::string& which, int64_t nbytes, int64_t iters, uintptr_t stream) {
  auto s = reinterpret_cast<cudaStream_t>(stream);
  cudaError_t failed = cudaSuccess;
  auto note = [&](cudaError_t e) { if (e != cudaSuccess && failed == cudaSuccess) failed = e; };
  double ns = 0;
  if (which == "cudaMalloc") {
    ns = ns_per_iteration(iters, [&] {
      void* p = nullptr;
      note(cudaMalloc(&p, nbytes));
      note(cudaFree(p));
    });
  } else if (which == "cudaMallocAsync") {
    ns = ns_per_iteration(iters, [&] {
      void* p = nullptr;
      note(cudaMallocAsync(&p, nbytes, s));
      note(cudaFreeAsync(p, s));
    });
    note(cudaStreamSynchronize(s));
  } else {
    throw_if_error(InvalidArgument("time_cuda_pairs: unknown allocator '", which, "'"));
  }
  if (failed != cudaSuccess) {
    cudaGetLastError();
    throw_if_error(Error(StatusCode::kInternal, "time_cuda_pairs: ", cudaGetErrorString(failed)));
  }
  return ns;
}
#endif

}  // namespace

void bind_memory_bench(nb::module_& m) {
  m.def("time_pool_pairs", &pool_pairs, nb::arg("device_kind"), nb::arg("device_index"),
        nb::arg("nbytes"), nb::arg("iters"), nb::arg("stream"),
        "ns per allocate+free pair on the device's pool, timed in C++.");
#if XPURUNTIME_WITH_CUDA
  m.def("time_cuda_pairs", &cuda_pairs, nb::arg("allocator"), nb::arg("nbytes"), nb::arg("iters"),
        nb::arg("stream"), "ns per pair of cudaMalloc/cudaFree or cudaMallocAsync/cudaFreeAsync.");
#endif
}

}  // namespace xpu::python
