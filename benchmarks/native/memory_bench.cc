// Allocation latency measured from C++ (no Python in the loop), for
// benchmarks/bench_memory.py: the xpuruntime pool and, with CUDA, the CUDA
// allocators it is compared against. A benchmark tool, not part of the package:
// built on request (cmake -DXPURUNTIME_BUILD_BENCHMARKS=ON, target
// xpuruntime_memory_bench; bench_memory.py does it).
//
//   xpuruntime_memory_bench <cpu|cuda> <iters> <bytes>...
//
// prints one JSON object per line: {"bytes": n, "impl": "...", "us_per_pair": t}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "xpuruntime/memory/device_pools.h"

#if XPURUNTIME_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace {

template <typename Body>
double us_per_iteration(long iters, Body&& body) {
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i) body();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::micro>(t1 - t0).count() / static_cast<double>(iters);
}

void report(size_t nbytes, const char* impl, double us) {
  std::printf("{\"bytes\": %zu, \"impl\": \"%s\", \"us_per_pair\": %.6f}\n", nbytes, impl, us);
  std::fflush(stdout);
}

bool fail(const std::string& what) {
  std::fprintf(stderr, "xpuruntime_memory_bench: %s\n", what.c_str());
  return false;
}

bool pool_pairs(xpu::Device dev, size_t nbytes, long iters) {
  xpu::memory::CachingPool* pool = nullptr;
  xpu::Status failed = xpu::memory::device_pool(dev, &pool);
  if (!failed.ok()) return fail(failed.message());
  auto pair = [&] {
    void* p = nullptr;
    xpu::Status st = pool->allocate(nbytes, nullptr, &p);
    if (st.ok()) st = pool->deallocate(p, nullptr);
    if (!st.ok() && failed.ok()) failed = st;
  };
  us_per_iteration(10, pair);  // warm: the first pair fills the cache
  const double us = us_per_iteration(iters, pair);
  if (!failed.ok()) return fail(failed.message());
  report(nbytes, "xpuruntime pool (C++)", us);
  return true;
}

#if XPURUNTIME_WITH_CUDA
bool cuda_pairs(size_t nbytes, long iters) {
  cudaError_t failed = cudaSuccess;
  auto note = [&](cudaError_t e) { if (e != cudaSuccess && failed == cudaSuccess) failed = e; };
  const long slow_iters = iters / 100 > 10 ? iters / 100 : 10;  // cudaMalloc takes up to ~300 us
  report(nbytes, "cudaMalloc/cudaFree (C++)", us_per_iteration(slow_iters, [&] {
           void* p = nullptr;
           note(cudaMalloc(&p, nbytes));
           note(cudaFree(p));
         }));
  cudaStream_t s = nullptr;
  report(nbytes, "cudaMallocAsync (C++)", us_per_iteration(iters, [&] {
           void* p = nullptr;
           note(cudaMallocAsync(&p, nbytes, s));
           note(cudaFreeAsync(p, s));
         }));
  note(cudaStreamSynchronize(s));
  if (failed != cudaSuccess) return fail(cudaGetErrorString(failed));
  return true;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <cpu|cuda> <iters> <bytes>...\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const long iters = std::atol(argv[2]);
  if ((kind != "cpu" && kind != "cuda") || iters <= 0) {
    std::fprintf(stderr, "usage: %s <cpu|cuda> <iters> <bytes>...\n", argv[0]);
    return 2;
  }
  const xpu::Device dev{kind == "cuda" ? xpu::DeviceKind::kCUDA : xpu::DeviceKind::kCPU, 0};
  for (int i = 3; i < argc; ++i) {
    const size_t nbytes = std::strtoull(argv[i], nullptr, 10);
    if (!pool_pairs(dev, nbytes, iters)) return 1;
#if XPURUNTIME_WITH_CUDA
    if (kind == "cuda" && !cuda_pairs(nbytes, iters)) return 1;
#endif
  }
  return 0;
}
