// Rows held in registers, possibly split over a thread-block cluster: the pieces
// that the register-resident row kernels (rms_norm, layer_norm) share.
// Device: which columns a thread owns (RowSlice), loading the row into registers,
// and row sums reduced over the block and then the cluster (RowSum). Host: one
// launch of such a kernel, one cluster per row (launch_split_rows).
// The split rule itself is cuda::split_shape (cluster.cuh).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cuda_utils.cuh"

namespace xpu::cuda {

// ---- device --------------------------------------------------------------------------------

// The columns this thread holds: first, first + stride, ... (ITEMS vectors of VEC),
// inside its CTA's slice [rank * slice, (rank + 1) * slice). Interleaved by thread
// so that a warp's k-th vectors are contiguous (coalesced 16-byte accesses).
struct RowSlice {
  int first, stride;
  __device__ __forceinline__ int col(int k) const { return first + k * stride; }
};

template <int VEC>
__device__ __forceinline__ RowSlice row_slice(int rank, int slice) {
  return {rank * slice + static_cast<int>(threadIdx.x) * VEC, static_cast<int>(blockDim.x) * VEC};
}

// v[k] = row[s.col(k) .. + VEC) for the columns below n; the others are left unset
// and every caller skips them with the same `col < n` test. FULL (here and in
// load_row_clamped): the caller's row fills every thread's vectors (row_fills_threads),
// so every load is in the row and none is tested or clamped.
template <typename T, int VEC, int ITEMS, bool FULL = false>
__device__ __forceinline__ void load_row(Vec<T, VEC> (&v)[ITEMS], const T* __restrict__ row,
                                         RowSlice s, int n) {
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
    if (FULL || s.col(k) < n) v[k] = load_vec<T, VEC>(row + s.col(k));
}

// v[k] = row[min(s.col(k), n - VEC) .. + VEC): every load unconditional, columns
// past n re-read the row's last vector and the caller masks them with `col < n`.
// Why: with load_row's `if (col < n)` the compiler sank each item's address
// arithmetic into its predicated block and issued the second load only after the
// first had returned (SASS, run 15: softmax 8192x8192 bf16 0.071 -> 0.079 ms).
template <typename T, int VEC, int ITEMS, bool FULL = false>
__device__ __forceinline__ void load_row_clamped(Vec<T, VEC> (&v)[ITEMS], const T* __restrict__ row,
                                                 RowSlice s, int n) {
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
    v[k] = load_vec<T, VEC>(row + (FULL ? s.col(k) : min(s.col(k), n - VEC)));
}

// The rows a walk reads: NT tensors, each a base pointer and a row stride.
template <typename T, int NT>
struct RowSources {
  const T* ptr[NT];
  int64_t stride[NT];
};

// One row's slices of NT tensors as this thread holds them (RowSlice's columns).
template <typename T, int VEC, int ITEMS, int NT>
struct RowVecs {
  Vec<T, VEC> v[NT][ITEMS];
};

// r = row `row` of every source, straight from global memory (load_row_clamped's
// unconditional loads: the rms_norm backward of run 16a took 0.243 ms with `col < n`
// predicates against 0.2085 without, 32768x4096 bf16).
template <typename T, int VEC, int ITEMS, int NT>
__device__ __forceinline__ void load_rows(RowVecs<T, VEC, ITEMS, NT>& r,
                                          const RowSources<T, NT>& src, int64_t row, RowSlice s,
                                          int n) {
#pragma unroll
  for (int t = 0; t < NT; ++t)
    load_row_clamped<T, VEC, ITEMS>(r.v[t], src.ptr[t] + row * src.stride[t], s, n);
}

// A reduction over a row split over `csize` CTAs (1: one CTA), returned to every
// thread of every CTA with the same bits: Ops::warp's fixed tree (its result in
// every lane), the warps' values through the same tree, then the CTAs' in rank
// order through DSMEM (cluster_reduce with Ops as the operation). No atomics.
// Successive calls alternate between two scratch buffers and two DSMEM slots,
// so one barrier a call suffices: a thread writes buffer p again only two calls
// later, after the barrier of the call in between, which no thread passes before
// it has read buffer p. Every thread of every CTA makes the same calls.
// The kernel declares the shared memory: `__shared__ V scratch[2][32], slot[2];`.
template <typename V, typename Ops>
class RowReduce {
 public:
  __device__ __forceinline__ RowReduce(V (*scratch)[32], V* slot, int csize)
      : scratch_(scratch), slot_(slot), csize_(csize) {}

  __device__ __forceinline__ V operator()(V v) {
    V* buf = scratch_[parity_];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = Ops::warp(v);
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    v = Ops::warp(lane < warps ? buf[lane] : V{});
    v = cluster_reduce(v, slot_, parity_, csize_, Ops{});
    parity_ ^= 1;
    return v;
  }

 private:
  V (*scratch_)[32];
  V* slot_;
  int csize_;
  int parity_ = 0;
};

// Sums (float, or float2: two sums at the cost of one reduction).
struct SumOps : Plus {
  template <typename V>
  __device__ __forceinline__ static V warp(V v) {
    return warp_sum(v);
  }
};
template <typename V>
using RowSumOf = RowReduce<V, SumOps>;
using RowSum = RowSumOf<float>;
using RowSum2 = RowSumOf<float2>;

// Calls body(row, buf, parity) for rows first, first + step, ... < rows, with
// `buf` filled by load(row, buf). The next row's loads are issued before the
// body of the current one runs, so they are in flight through its reductions,
// barriers and stores (one row ahead; the buffer is held twice). `parity`
// alternates per row (cluster_reduce's slots). The row sequence depends only on
// (first, step), so every thread that must meet in a barrier walks it alike.
template <typename Buf, typename Load, typename Body>
__device__ __forceinline__ void walk_rows(int64_t first, int64_t rows, int64_t step, Load load,
                                          Body body) {
  Buf cur;
  if (first < rows) load(first, cur);
  int parity = 0;
#pragma unroll 1
  for (int64_t row = first; row < rows; row += step, parity ^= 1) {
    const bool more = row + step < rows;
    Buf next;
    if (more) load(row + step, next);
    body(row, cur, parity);
    if (more) cur = next;
  }
}

// ---- host ----------------------------------------------------------------------------------

// kernel<<<clusters * s.cluster, s.threads>>> in clusters of s.cluster CTAs, one
// cluster per row (rows past kMaxGrid: the kernel walks them grid-stride), or,
// with `persistent`, only as many clusters as are resident on the device at once
// (kernels that walk their rows with walk_rows, loading one row ahead).
// *launched is false, and nothing is launched, when not even one cluster of this
// shape fits on the device (the caller falls back to its looped kernel).
template <typename... P, typename... A>
Status launch_split_rows(void (*kernel)(P...), const SplitShape& s, int64_t rows, bool persistent,
                         cudaStream_t stream, const char* op, const char* what, bool* launched,
                         A&&... args) {
  *launched = false;
  int64_t clusters = std::min<int64_t>(rows, kMaxGrid);
  if (s.cluster > 1 || persistent) {
    int resident = 0;
    XPU_RETURN_IF_ERROR(
        resident_count(reinterpret_cast<const void*>(kernel), s.threads, s.cluster, &resident));
    if (resident <= 0) return Status::Ok();
    if (persistent) clusters = std::min<int64_t>(clusters, resident);
  }
  XPU_RETURN_IF_ERROR(cuda_status(
      launch_clustered(kernel, static_cast<unsigned>(clusters * s.cluster), s.threads, s.cluster,
                       stream, static_cast<A&&>(args)...),
      op, what));
  *launched = true;
  return Status::Ok();
}

}  // namespace xpu::cuda
