// Thread-block clusters (sm_90): one row split over the CTAs of a 1-D cluster,
// whose per-CTA partials (sums; softmax's (max, sum) pairs) meet through
// distributed shared memory (DSMEM). Device side: cluster_rank, cluster_reduce
// (cluster_sum), cluster_exit. Host side: the split rule, a launch with a
// cluster size, and how many clusters fit on the device.
// Everything degrades to plain per-CTA code when the cluster size is 1.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/row_launch.cuh"
#include "xpuruntime/status.h"

namespace xpu::cuda {

// Largest cluster used: 8 is the portable limit (no opt-in attribute needed).
inline constexpr int kMaxCluster = 8;

// ---- device --------------------------------------------------------------------------------

// This CTA's rank in its cluster; 0 for csize == 1 (a launch without clusters).
__device__ __forceinline__ int cluster_rank(int csize) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (csize > 1) return static_cast<int>(cooperative_groups::this_cluster().block_rank());
#endif
  return 0;
}

// Reduces one value per CTA (`v`, equal in every thread of the CTA) over the
// cluster with `op`, folding the CTAs' values in rank order (op(op(v0, v1), v2)
// ...) so that every CTA gets the same bits (deterministic, no atomics). Every
// thread of every CTA must call it the same number of times. `slot` is 2 V of
// shared memory; successive calls alternate `parity`: a CTA writes slot[p] again
// only two calls later, after the barrier of the call in between, which no peer
// passes before it has finished reading slot[p].
template <typename V, typename Op>
__device__ __forceinline__ V cluster_reduce(V v, V* slot, int parity, int csize, Op op) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (csize > 1) {
    namespace cg = cooperative_groups;
    if (threadIdx.x == 0) slot[parity] = v;
    cg::this_cluster().sync();  // release our slot, acquire the peers'
    const cg::cluster_group cluster = cg::this_cluster();
    V acc = *cluster.map_shared_rank(slot + parity, 0);
    for (int r = 1; r < csize; ++r) acc = op(acc, *cluster.map_shared_rank(slot + parity, r));
    return acc;
  }
#endif
  return v;
}

struct Plus {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
  __device__ __forceinline__ float2 operator()(float2 a, float2 b) const {
    return make_float2(a.x + b.x, a.y + b.y);
  }
};

// Sum over the cluster, as cluster_reduce (rank order; `slot` is 2 floats).
__device__ __forceinline__ float cluster_sum(float v, float* slot, int parity, int csize) {
  return cluster_reduce(v, slot, parity, csize, Plus{});
}

// Called once before a CTA exits: its shared memory must outlive the peers'
// reads of its last slot.
__device__ __forceinline__ void cluster_exit(int csize) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (csize > 1) cooperative_groups::this_cluster().sync();
#endif
}

// ---- host ----------------------------------------------------------------------------------

// A row of n elements split over `cluster` CTAs: CTA r owns columns
// [r * slice, (r + 1) * slice) (the last ones may run past n or be empty), held
// as `items` vectors of `vec` elements by each of `threads` threads.
struct SplitShape {
  int cluster;  // 0: no split of at most max_cluster CTAs fits
  int items, threads, slice;
};

// Fewest CTAs (1, 2, 4, ... max_cluster) whose slices each fit resident_shape
// with at most max_elems elements a thread and max_threads threads (and
// prefer_items vectors a thread where the slice has work for them).
inline SplitShape split_shape(int64_t n, int vec, int max_elems, int max_threads, int max_cluster,
                              int prefer_items = 1) {
  const int64_t nvec = (n + vec - 1) / vec;
  for (int c = 1; c <= max_cluster; c *= 2) {
    const int64_t per = (nvec + c - 1) / c;  // vectors per CTA
    const RowShape s = resident_shape(per * vec, vec, max_elems, max_threads, 16, prefer_items);
    if (s.items > 0) return {c, s.items, s.threads, s.threads * s.items * vec};
  }
  return {0, 0, 0, 0};
}

// Largest cluster the current device runs (kMaxCluster from compute capability
// 9.0 on, else 1); cached per device.
Status max_cluster_size(int* out);

// The current device's multiprocessor count; cached per device.
Status multiprocessor_count(int* out);

// How many CTAs (cluster == 1) or clusters of `kernel` at `threads` threads (and
// `smem` bytes of dynamic shared memory a CTA) can be resident on the current
// device at once; cached per (kernel, threads, cluster, smem, device). A persistent
// grid of this many never waits for a second wave.
Status resident_count(const void* kernel, int threads, int cluster, int* out, int smem = 0);

// Raises `kernel`'s dynamic shared-memory limit on the current device to `bytes`
// (cudaFuncAttributeMaxDynamicSharedMemorySize; needed past 48 KiB, before the
// occupancy query and the launch); cached per (kernel, device). *ok is false, and
// nothing is changed, when the device cannot give one block that much.
Status allow_dynamic_smem(const void* kernel, int bytes, bool* ok);

// kernel<<<grid, threads, 0, stream>>>(args...) in clusters of `cluster` CTAs
// along x (cluster 1: a plain launch). Returns the launch's own error.
// launch_clustered_smem: the same with `smem` bytes of dynamic shared memory (past
// 48 KiB only after allow_dynamic_smem).
template <typename... P, typename... A>
cudaError_t launch_clustered_smem(void (*kernel)(P...), unsigned grid, int threads, int cluster,
                                  int smem, cudaStream_t stream, A&&... args) {
  cudaLaunchAttribute attr[1] = {};
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(static_cast<unsigned>(threads));
  cfg.dynamicSmemBytes = static_cast<size_t>(smem);
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = cluster > 1 ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<A&&>(args)...);
}

template <typename... P, typename... A>
cudaError_t launch_clustered(void (*kernel)(P...), unsigned grid, int threads, int cluster,
                             cudaStream_t stream, A&&... args) {
  return launch_clustered_smem(kernel, grid, threads, cluster, 0, stream,
                               static_cast<A&&>(args)...);
}

// Status for a CUDA runtime call's result, naming the op and the call.
inline Status cuda_status(cudaError_t err, const char* op, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  (void)cudaGetLastError();  // clear it so that later launches report their own errors
  return Error(StatusCode::kInternal, op, ": ", what, " failed: ", cudaGetErrorString(err));
}

}  // namespace xpu::cuda
