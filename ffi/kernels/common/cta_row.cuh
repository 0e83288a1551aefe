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

#include <cstdint>
#include <cstring>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"

namespace xpu::cuda {

// Threads of the widest one-row CTA: 1024 x 8 vectors hold a 65536-element bf16
// row (run 13: rms_norm 4096x65536 0.265 ms as one CTA against 0.394 split over
// a cluster of 4). Kernels launched this wide declare __launch_bounds__(1024),
// which caps them at 64 registers a thread.
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
  template <typename V>
  __device__ __forceinline__ static V identity() {
    return -INFINITY;
  }
};
struct SumOp {
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

// ---- host ----------------------------------------------------------------------------------

// One CTA a row: `items` vectors of `vec` a thread, `threads` threads (a multiple
// of 32, at most kMaxCtaThreads). First the fewest threads with at most
// `elems` elements a thread (from `prefer` items up); else, with at most
// `wide_elems` (a packed row, more registers of data); items 0 when neither fits.
inline RowShape cta_shape(int64_t n, int vec, int elems, int prefer, int wide_elems) {
  RowShape s = resident_shape(n, vec, elems, kMaxCtaThreads, 16, prefer);
  if (s.items == 0 && wide_elems > elems)
    s = resident_shape(n, vec, wide_elems, kMaxCtaThreads, 16, wide_elems / vec);
  return s;
}

}  // namespace xpu::cuda
