// One row a CTA, held in registers: the pieces the lean row kernels share
// (softmax forward; rms_norm and layer_norm forwards at up to 1024 threads a
// row). Device: a CTA reduction with one barrier (cta_reduce) and exp2 on the
// SFU without the subnormal fix-up (ex2_ftz), opaque (keeps a row packed). Host: the CTA shape rule
// (cta_shape), which tries one CTA of up to kMaxCtaThreads threads before any
// cluster.
//
// Why a separate path from resident_row.cuh's cluster kernels: H200 run 13
// (docs/kernels/softmax.md) timed a minimal one-row-a-CTA softmax at 0.132 ms
// (32768x4096 bf16, Liger 0.132) where the library's cluster-capable kernel took
// 0.161. SASS (cuobjdump, sm_90): 312 instructions against 800, half the MUFU
// and FMUL count (each exponential evaluated twice, exp2f's subnormal fix-up,
// the walk's second copy of the row and the cluster branches). At 16 elements a
// thread that is ~37 issued instructions an element, above the ~31 an SM can
// issue per element while the row streams at the copy rate (132 SMs x 4
// schedulers x 1.98 GHz against 4.25 TB/s): the kernel was issue-bound.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cluster_push.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/common/row_launch.cuh"

namespace xpu::cuda {

// Threads of the widest one-row CTA (at most 4 vectors a thread: 64 registers of
// the 1024-thread cap).
inline constexpr int kMaxCtaThreads = 1024;

// ---- device --------------------------------------------------------------------------------

// 2^x on the SFU; results below 2^-126 flush to 0 (exp2f adds a compare and two
// multiplies an element to produce subnormals). Used where the result is a
// probability: a flushed 1e-38 is within every dtype's tolerance.
__device__ __forceinline__ float ex2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Makes the compiler treat a held row as changed (no instruction is emitted),
// so that f32 values it derived from the row before are recomputed from the
// packed row after, not kept live across a reduction: at bf16 those would
// double the registers the row takes (ptxas: softmax's cluster forward
// <bf16, 8, 2> 64 -> 40 registers a thread), costing occupancy or spills, for a
// few conversions saved.
template <typename T, int VEC>
__device__ __forceinline__ void opaque(Vec<T, VEC>& v) {
  static_assert(sizeof(v) % 2 == 0);
  if constexpr (sizeof(v) % 4 == 0) {
    uint32_t w[sizeof(v) / 4];
    memcpy(w, &v, sizeof(v));
#pragma unroll
    for (int i = 0; i < int(sizeof(v) / 4); ++i) asm volatile("" : "+r"(w[i]));
    memcpy(&v, w, sizeof(v));
  } else {
    unsigned short h;
    memcpy(&h, &v, 2);
    asm volatile("" : "+h"(h));
    memcpy(&v, &h, 2);
  }
}

struct MaxOp {
  __device__ __forceinline__ static float warp(float v) { return warp_max(v); }
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
  template <typename V>
  __device__ __forceinline__ static V identity() {
    return -INFINITY;
  }
};
struct SumOp : Plus {
  template <typename V>
  __device__ __forceinline__ static V warp(V v) {
    return warp_sum(v);
  }
  template <typename V>
  __device__ __forceinline__ static V identity() {
    return V{};
  }
};

// Op over the CTA (blockDim.x a multiple of 32) of a float or float2 (two sums at
// the cost of one), returned to every thread with the same bits: a fixed shuffle
// tree in each warp, then the warps' values through the same tree. One barrier a
// call: callers alternate between two buffers of 32 values (`buf[parity]`), so a
// buffer is written again only after the barrier of the call in between, which no
// thread passes before it has read this one.
template <typename Op, typename V>
__device__ __forceinline__ V cta_reduce(V v, V* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = Op::warp(v);
  if (blockDim.x == 32) return v;
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  return Op::warp(lane < static_cast<int>(blockDim.x >> 5) ? buf[lane] : Op::template identity<V>());
}

// cta_reduce with the second stage folded by every thread: the warps' values read
// from shared memory in warp order (broadcast loads) instead of a second shuffle tree,
// so a row's reduction waits on one shared-memory round trip after the barrier (the
// staged norm backward: its rows reduce once each on the walk's critical path). The
// same bits in every thread; same buffer rule as cta_reduce; buf 16-byte aligned.
// WARPS: the CTA's warps where the caller knows them at compile time (no test a warp;
// 0: blockDim's).
template <typename Op, int WARPS = 0, typename V>
__device__ __forceinline__ V cta_reduce_flat(V v, V* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = Op::warp(v);
  if constexpr (WARPS == 1) return v;
  if (WARPS == 0 && blockDim.x == 32) return v;
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  // 16 bytes a load (buf 16-byte aligned): 4 floats or 2 float2 at a time, in warp order.
  constexpr int kPer = 16 / sizeof(V);
  const int warps = WARPS > 0 ? WARPS : static_cast<int>(blockDim.x >> 5);
  constexpr int kMaxWarps = WARPS > 0 ? WARPS : kMaxCtaThreads / 32;
  V acc = buf[0];
#pragma unroll
  for (int q = 0; q < (kMaxWarps + kPer - 1) / kPer; ++q) {
    if (WARPS == 0 && q * kPer >= warps) break;
    V part[kPer];
    *reinterpret_cast<float4*>(part) = reinterpret_cast<const float4*>(buf)[q];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int w = q * kPer + i;
      if (w > 0 && (w < kMaxWarps && (WARPS > 0 || w < warps))) acc = Op{}(acc, part[i]);
    }
  }
  return acc;
}

// Shared memory of a row's reductions: cta_reduce's two buffers and the cluster's
// push slots (RowReducer).
template <typename V>
struct RowReduceShared {
  V buf[2][32];
  PushSlots<V> slots;
};

// Reductions over a row held by one CTA or, with CLUSTER, by the CTAs of a cluster:
// cta_reduce, then the CTAs' values pushed to every peer (ClusterPush). The k-th
// reduction of a row passes parity k % 2. Constructed by every thread at kernel
// start; finish() before exit where a CTA may reduce nothing (ClusterPush's note).
template <bool CLUSTER, typename V = float>
class RowReducer {
 public:
  __device__ __forceinline__ RowReducer(RowReduceShared<V>& s, int csize)
      : s_(s), push_(s.slots, csize) {}
  template <typename Op>
  __device__ __forceinline__ V reduce(V v, int parity) {
    return push_.reduce(cta_reduce<Op>(v, s_.buf[parity]), parity, Op{});
  }
  __device__ __forceinline__ void finish() { push_.finish(); }

 private:
  RowReduceShared<V>& s_;
  ClusterPush<CLUSTER, V> push_;
};

// Where a one-row block works (forward_cta kernels): its rank in the cluster, its
// columns (row_slice) and its row, block b being row row0 + b / csize (no row
// loop: a loop over rows costs registers).
struct CtaRowFrame {
  int rank;
  RowSlice cols;
  int64_t row;
};
template <bool CLUSTER, int VEC>
__device__ __forceinline__ CtaRowFrame cta_row_frame(int64_t row0, int slice, int csize) {
  const int rank = CLUSTER ? cluster_rank(csize) : 0;
  return {rank, row_slice<VEC>(rank, CLUSTER ? slice : 0),
          row0 + (CLUSTER ? blockIdx.x / csize : blockIdx.x)};
}

// ---- host ----------------------------------------------------------------------------------

// Threads of a CTA holding a packed row (128 bytes a thread) before the row is
// split over a cluster (cta_split): 256 x 8 vectors, as QuACK's Hopper heuristic (a
// cluster of 4 such CTAs for a 65536-element bf16 row).
inline constexpr int kWideThreads = 256;
// Vectors a thread holds in a packed row: 128 bytes, 32 registers.
inline constexpr int kPackedItems = 8;

// One CTA a row: `items` vectors of `vec` a thread, `threads` threads (a multiple
// of 32). First the fewest threads, at most kMaxCtaThreads, with at most `elems`
// elements (and half a packed row) a thread, from `prefer` items up; else a packed
// row (kPackedItems vectors) in at most `packed_threads` (0: none); items 0 when
// neither fits. Measured on the H200 at 4096x65536 bf16 (run 15, docs/kernels):
// rms_norm one CTA of 1024 x 8 0.295 ms, a cluster of 4 x 256 x 8 0.365; softmax
// 0.445 and 0.412; layer_norm 0.573 and 0.449 (its cluster kernel with one shifted
// reduction, 4 x 512 x 4: 0.418). So each family passes its own packed_threads.
inline RowShape cta_shape(int64_t n, int vec, int elems, int prefer, int packed_threads) {
  RowShape s = resident_shape(n, vec, std::min(elems, kPackedItems / 2 * vec), kMaxCtaThreads, 16,
                              prefer);
  if (s.items == 0 && packed_threads > 0)
    s = resident_shape(n, vec, kPackedItems * vec, packed_threads, kPackedItems, kPackedItems);
  return s;
}

// The block limit of a one-row kernel holding ITEMS vectors a thread whose packed
// rows run at most kWideThreads threads (its __launch_bounds__): those may take
// more than 64 registers without spilling.
// Whether csize CTAs of `threads` x `items` vectors of `vec` cover a row of n exactly, so
// that a kernel's FULL form (no `col < n` tests) applies.
inline bool row_fills_threads(int64_t n, int csize, int threads, int items, int vec) {
  return int64_t{csize} * threads * items * vec == n;
}

template <int ITEMS>
inline constexpr int kCtaMaxThreads = ITEMS >= kPackedItems ? kWideThreads : kMaxCtaThreads;

// A packed row split over the fewest CTAs of a cluster (at most max_cluster) of at
// most kWideThreads threads x kPackedItems vectors; cluster 0 when none fits.
inline SplitShape cta_split(int64_t n, int vec, int max_cluster) {
  return split_shape(n, vec, kPackedItems * vec, kWideThreads, max_cluster, kPackedItems);
}

// kernel<<<rows x csize, threads, smem>>>(row0, args...) in clusters of csize CTAs (one
// CTA or cluster a row, no row loop in the kernel: it takes row0 + blockIdx.x / csize),
// in grids of at most kMaxGrid rows, with `smem` bytes of dynamic shared memory.
// *launched is false, and nothing is launched, where not even one cluster fits on the
// device (or the shared memory does not).
template <typename... P, typename... A>
Status launch_rows_smem(void (*kernel)(int64_t, P...), int64_t rows, int threads, int csize,
                        int smem, cudaStream_t stream, const char* op, const char* what,
                        bool* launched, A&&... args) {
  *launched = false;
  const void* fn = reinterpret_cast<const void*>(kernel);
  if (smem > 0) {
    bool fits = false;
    XPU_RETURN_IF_ERROR(allow_dynamic_smem(fn, smem, &fits));
    if (!fits) return Status::Ok();
  }
  if (csize > 1 || smem > 0) {
    int resident = 0;
    XPU_RETURN_IF_ERROR(resident_count(fn, threads, csize, &resident, smem));
    if (resident <= 0) return Status::Ok();
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kMaxGrid) {
    const int64_t count = std::min(kMaxGrid, rows - r0);
    XPU_RETURN_IF_ERROR(cuda_status(
        launch_clustered_smem(kernel, static_cast<unsigned>(count * csize), threads, csize, smem,
                              stream, r0, static_cast<A&&>(args)...),
        op, what));
  }
  *launched = true;
  return Status::Ok();
}

// launch_rows_smem without dynamic shared memory.
template <typename... P, typename... A>
Status launch_rows(void (*kernel)(int64_t, P...), int64_t rows, int threads, int csize,
                   cudaStream_t stream, const char* op, bool* launched, A&&... args) {
  return launch_rows_smem(kernel, rows, threads, csize, 0, stream, op, "forward launch", launched,
                          static_cast<A&&>(args)...);
}

}  // namespace xpu::cuda
