// Launch-shape experiments for the row kernels (issue 16), outside the library so
// that one device call compiles them in seconds and times many shapes side by side
// with Liger and torch.compile (benchmarks/row_variants.py loads this through
// ctypes). bf16 rows only, 16-byte vectors, n a multiple of 8 * THREADS * ITEMS.
// Every variant is a complete, correct forward (row_variants.py checks each one
// against torch in float32), so a fast variant is a candidate for the library.
//
//   cta   one row per CTA, THREADS x ITEMS 16-byte vectors, non-persistent grid
//   warp  one row per warp (ROWS warps a CTA), reduction by shuffles alone
//   pers  persistent grid, the next row prefetched into registers
// LD: 0 plain ld.global, 1 ld.global.nc, 2 ld.global.nc.L1::no_allocate, 3 ld.global.cs
// ST: 0 plain st.global, 1 st.global.cs
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/cluster_push.cuh"  // the library's cluster reduction (softmax_tma)
#include "kernels/common/cta_row.cuh"  // cta_reduce, MaxOp, SumOp, ex2_ftz
#include "kernels/common/cuda_utils.cuh"  // warp_sum, warp_max
#include "kernels/common/norm_backward.cuh"  // the library's fused norm backward, timed beside
#include "kernels/common/norm_row_groups.h"  // the library's row groups of the norm backwards
#include "kernels/rms_norm/forward_cta.cuh"  // the library's rms_norm forward, timed beside

namespace {

using bf16 = __nv_bfloat16;
using xpu::cuda::warp_max;
using xpu::cuda::warp_sum;

// LD 4 and 5 load as LD 0; their kernels also prefetch a later row into L2 (rms_cta).
template <int LD>
__device__ __forceinline__ uint4 ld16(const uint4* p) {
  uint4 v;
  if constexpr (LD == 0 || LD == 4 || LD == 5 || LD == 8) {
    v = *p;
  } else if constexpr (LD == 6 || LD == 7 || LD == 10) {
    // Inductor's eviction hints (triton_red_*, run 28e): L1 and L2 priorities, the L2 one
    // through a createpolicy; 6 evict_last, 7 evict_first, 10 L1 no_allocate + L2 evict_first.
    uint64_t pol;
    if constexpr (LD == 6) {
      asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
      asm volatile("ld.global.L1::evict_last.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p), "l"(pol));
    } else if constexpr (LD == 7) {
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
      asm volatile("ld.global.L1::evict_first.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p), "l"(pol));
    } else {
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
      asm volatile("ld.global.L1::no_allocate.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p), "l"(pol));
    }
  } else if constexpr (LD == 9) {
    asm volatile("ld.global.L1::evict_last.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  } else if constexpr (LD == 1) {
    v = __ldg(p);
  } else if constexpr (LD == 2) {
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
  } else {
    v = __ldcs(p);
  }
  return v;
}

template <int ST>
__device__ __forceinline__ void st16(uint4* p, uint4 v) {
  if constexpr (ST == 0) *p = v;
  else __stcs(p, v);
}

__device__ __forceinline__ void unpack(uint4 v, float f[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

__device__ __forceinline__ uint4 pack(const float f[8]) {
  uint4 v;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return v;
}

// Sum over the CTA; every thread gets it. `buf` holds THREADS / 32 floats and is
// used once per launch-row (callers give each reduction of a row its own buffer,
// and persistent callers alternate two).
template <int THREADS, bool MAX = false>
__device__ __forceinline__ float block_reduce(float v, float* buf) {
  v = MAX ? warp_max(v) : warp_sum(v);
  if constexpr (THREADS == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  float t = buf[0];
#pragma unroll
  for (int i = 1; i < THREADS / 32; ++i) t = MAX ? fmaxf(t, buf[i]) : t + buf[i];
  return t;
}

// ---- rms_norm -----------------------------------------------------------------------------

// Rows a wave of one-CTA-an-SM kernels covers on the H200 (132 SMs), for the L2 prefetch.
inline constexpr int kPrefetchWave = 132;

template <int ITEMS>
__device__ __forceinline__ float sumsq(const uint4 (&xv)[ITEMS]) {
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float f[8];
    unpack(xv[k], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) s += f[j] * f[j];
  }
  return s;
}

template <int ITEMS, int ST, int STRIDE>
__device__ __forceinline__ void rms_store(const uint4 (&xv)[ITEMS], const uint4* w4, uint4* y4,
                                          int first, float r) {
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const uint4 wq = __ldg(w4 + first + k * STRIDE);
    float f[8], g[8];
    unpack(xv[k], f);
    unpack(wq, g);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[j] = f[j] * r * g[j];
    st16<ST>(y4 + first + k * STRIDE, pack(f));
  }
}

template <int THREADS, int ITEMS, int LD, int ST>
__global__ void __launch_bounds__(THREADS) rms_cta(const bf16* __restrict__ x,
                                                   const bf16* __restrict__ w, bf16* __restrict__ y,
                                                   float* __restrict__ rstd, int n, float eps) {
  __shared__ float buf[THREADS / 32];
  const int64_t row = blockIdx.x;
  const uint4* x4 = reinterpret_cast<const uint4*>(x + row * n);
  uint4 xv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) xv[k] = ld16<LD>(x4 + threadIdx.x + k * THREADS);
  if constexpr (LD >= 4) {
    // The row a CTA launched one (LD 4) or two (LD 5) waves later will load, into L2 by the
    // TMA unit: one CTA an SM at 1024 threads, so a wave is the SM count of rows.
    const int64_t later = row + (LD - 3) * int64_t{kPrefetchWave};
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (threadIdx.x == 0 && later < gridDim.x)
      xpu::cuda::mbar::prefetch_l2(x + later * n, static_cast<uint32_t>(n) * sizeof(bf16));
#endif
  }
  const float r = rsqrtf(block_reduce<THREADS>(sumsq(xv), buf) / n + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  rms_store<ITEMS, ST, THREADS>(xv, reinterpret_cast<const uint4*>(w),
                                reinterpret_cast<uint4*>(y + row * n), threadIdx.x, r);
}

template <int ROWS, int ITEMS, int LD, int ST>
__global__ void __launch_bounds__(32 * ROWS) rms_warp(const bf16* __restrict__ x,
                                                      const bf16* __restrict__ w,
                                                      bf16* __restrict__ y, float* __restrict__ rstd,
                                                      int64_t rows, int n, float eps) {
  const int64_t row = int64_t(blockIdx.x) * ROWS + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const uint4* x4 = reinterpret_cast<const uint4*>(x + row * n);
  uint4 xv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) xv[k] = ld16<LD>(x4 + lane + k * 32);
  const float r = rsqrtf(warp_sum(sumsq(xv)) / n + eps);
  if (lane == 0) rstd[row] = r;
  rms_store<ITEMS, ST, 32>(xv, reinterpret_cast<const uint4*>(w),
                           reinterpret_cast<uint4*>(y + row * n), lane, r);
}

// Persistent: CTA b walks rows b, b + grid, ...; the next row's loads are issued
// before this row reduces, so a row's reduction and stores hide the next load.
template <int THREADS, int ITEMS, int LD, int ST>
__global__ void __launch_bounds__(THREADS) rms_pers(const bf16* __restrict__ x,
                                                    const bf16* __restrict__ w,
                                                    bf16* __restrict__ y, float* __restrict__ rstd,
                                                    int64_t rows, int n, float eps) {
  __shared__ float buf[2][THREADS / 32];
  int64_t row = blockIdx.x;
  if (row >= rows) return;
  const int64_t step = gridDim.x;
  uint4 cur[ITEMS], nxt[ITEMS];
  const uint4* x4 = reinterpret_cast<const uint4*>(x);
  const int per_row = n / 8;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) cur[k] = ld16<LD>(x4 + row * per_row + threadIdx.x + k * THREADS);
  for (int parity = 0; row < rows; row += step, parity ^= 1) {
    const int64_t next = row + step;
    if (next < rows) {
#pragma unroll
      for (int k = 0; k < ITEMS; ++k)
        nxt[k] = ld16<LD>(x4 + next * per_row + threadIdx.x + k * THREADS);
    }
    const float r = rsqrtf(block_reduce<THREADS>(sumsq(cur), buf[parity]) / n + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    rms_store<ITEMS, ST, THREADS>(cur, reinterpret_cast<const uint4*>(w),
                                  reinterpret_cast<uint4*>(y + row * n), threadIdx.x, r);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) cur[k] = nxt[k];
  }
}

// Two passes over the row, as Inductor's looped reductions (triton_red_*): U vectors a
// thread an iteration summed, the row reduced, then read again (from L2) and scaled; only the
// sum lives across the reduction; capped at 32 registers, so 2048 threads an SM (session 17).
// LD picks the hints of (first pass, second pass, w): 0 (plain, plain, __ldg); 6 Inductor's
// (evict_last, evict_first, evict_last); 7 (evict_last, plain, __ldg); 8 (plain, evict_first,
// __ldg); 9 (L1 evict_last without an L2 policy, plain, __ldg).
template <int LD> struct LoopHints {
  static constexpr int first = LD == 6 || LD == 7 ? 6 : LD == 9 ? 9 : LD == 8 ? 0 : LD;
  static constexpr int second = LD == 6 || LD == 8 ? 7 : LD >= 6 ? 0 : LD;
  static constexpr int weight = LD == 6 ? 6 : 1;
};

template <int THREADS, int U, int LD, int ST>
__global__ void __launch_bounds__(THREADS, 2048 / THREADS) rms_loop(const bf16* __restrict__ x,
                                                    const bf16* __restrict__ w,
                                                    bf16* __restrict__ y, float* __restrict__ rstd,
                                                    int n, float eps) {
  __shared__ float buf[THREADS / 32];
  const int64_t row = blockIdx.x;
  const uint4* x4 = reinterpret_cast<const uint4*>(x + row * n);
  const int nv = n / 8;
  float s = 0.f;
  for (int i = threadIdx.x; i < nv; i += THREADS * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      v[u] = i + u * THREADS < nv ? ld16<LoopHints<LD>::first>(x4 + i + u * THREADS) : make_uint4(0, 0, 0, 0);
    s += sumsq(v);
  }
  const float r = rsqrtf(block_reduce<THREADS>(s, buf) / n + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  const uint4* w4 = reinterpret_cast<const uint4*>(w);
  uint4* y4 = reinterpret_cast<uint4*>(y + row * n);
  for (int i = threadIdx.x; i < nv; i += THREADS * U) {
    uint4 v[U], g[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i + u * THREADS < nv) {
        v[u] = ld16<LoopHints<LD>::second>(x4 + i + u * THREADS);
        g[u] = ld16<LoopHints<LD>::weight>(w4 + i + u * THREADS);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i + u * THREADS < nv) {
        float f[8], h[8];
        unpack(v[u], f);
        unpack(g[u], h);
#pragma unroll
        for (int j = 0; j < 8; ++j) f[j] = f[j] * r * h[j];
        st16<ST>(y4 + i + u * THREADS, pack(f));
      }
    }
  }
}

// ---- softmax ------------------------------------------------------------------------------

template <int THREADS, int ITEMS, int LD, int ST>
__global__ void __launch_bounds__(THREADS) softmax_cta(const bf16* __restrict__ x,
                                                       bf16* __restrict__ y, int n) {
  __shared__ float buf[2][THREADS / 32];
  const int64_t row = blockIdx.x;
  const uint4* x4 = reinterpret_cast<const uint4*>(x + row * n);
  float f[ITEMS][8];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) unpack(ld16<LD>(x4 + threadIdx.x + k * THREADS), f[k]);
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
#pragma unroll
    for (int j = 0; j < 8; ++j) m = fmaxf(m, f[k][j]);
  m = block_reduce<THREADS, true>(m, buf[0]);
  constexpr float kLog2e = 1.4426950408889634f;
  const float ml = m * kLog2e;
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      f[k][j] = exp2f(fmaf(f[k][j], kLog2e, -ml));
      s += f[k][j];
    }
  const float inv = 1.f / block_reduce<THREADS>(s, buf[1]);
  uint4* y4 = reinterpret_cast<uint4*>(y + row * n);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
#pragma unroll
    for (int j = 0; j < 8; ++j) f[k][j] *= inv;
    st16<ST>(y4 + threadIdx.x + k * THREADS, pack(f[k]));
  }
}

// ---- softmax, the row staged in shared memory by TMA bulk copies ----------------------------
// For the 65536-column rows (issue 16: the library's register-held cluster rows reach 81% of
// copy, QuACK's shared-memory rows 98%). A row is split over a cluster of CLUSTER CTAs of
// THREADS x ITEMS 16-byte vectors; thread 0 copies the CTA's slice into shared memory with
// cp.async.bulk, completing on an mbarrier, so a row in flight holds no registers and
// shared memory (up to 227 KB an SM) bounds the rows an SM holds instead of the register file.
// Each pass reads the slice from shared memory again (max; exponentials summed; output);
// the reductions are the library's (cta_reduce, then ClusterPush to the peers).
// n == CLUSTER * THREADS * ITEMS * 8 only.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

template <int THREADS, int ITEMS, int CLUSTER>
__global__ void __launch_bounds__(THREADS) softmax_tma(const bf16* __restrict__ x,
                                                       bf16* __restrict__ y, int n) {
  extern __shared__ __align__(128) uint4 slice[];  // THREADS * ITEMS vectors
  __shared__ alignas(8) uint64_t full;
  __shared__ float buf[2][32];
  __shared__ xpu::cuda::PushSlots<float> slots;
  constexpr int kBytes = THREADS * ITEMS * 16, kChunk = kBytes < 16384 ? kBytes : 16384;
  const uint32_t bar = smem_u32(&full);
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar));
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  xpu::cuda::ClusterPush<(CLUSTER > 1), float> push(slots, CLUSTER);
  __syncthreads();  // the mbarrier's init before any thread waits on it
  const int rank = xpu::cuda::cluster_rank(CLUSTER);
  const int64_t row = blockIdx.x / CLUSTER;
  const char* src = reinterpret_cast<const char*>(x + row * n) + int64_t{rank} * kBytes;
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                 :: "r"(bar), "r"(kBytes) : "memory");
#pragma unroll
    for (int off = 0; off < kBytes; off += kChunk)
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
          :: "r"(smem_u32(slice) + off), "l"(src + off), "r"(kChunk), "r"(bar) : "memory");
  }
  for (;;) {
    uint32_t done;
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }"
        : "=r"(done) : "r"(bar) : "memory");
    if (done) break;
  }
  constexpr float kLog2e = 1.4426950408889634f;
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float f[8];
    unpack(slice[threadIdx.x + k * THREADS], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) m = fmaxf(m, f[j]);
  }
  using xpu::cuda::cta_reduce;
  m = push.reduce(cta_reduce<xpu::cuda::MaxOp>(m, buf[0]), 0, xpu::cuda::MaxOp{});
  const float ml = m * kLog2e;
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float f[8];
    unpack(slice[threadIdx.x + k * THREADS], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) s += xpu::cuda::ex2_ftz(fmaf(f[j], kLog2e, -ml));
  }
  const float inv =
      1.f / push.reduce(cta_reduce<xpu::cuda::SumOp>(s, buf[1]), 1, xpu::cuda::SumOp{});
  uint4* y4 = reinterpret_cast<uint4*>(y + row * n) + rank * THREADS * ITEMS;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float f[8];
    unpack(slice[threadIdx.x + k * THREADS], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[j] = xpu::cuda::ex2_ftz(fmaf(f[j], kLog2e, -ml)) * inv;
    y4[threadIdx.x + k * THREADS] = pack(f);
  }
}

// ---- norms over clusters, persistent and staged (session 12) ------------------------------
// norm_walk (persistent clusters, each CTA holding its slice of w and b in registers and
// staging its slice of x through a TMA ring) ran in run 23a (results/
// row_variants_run23a_h200.txt): layer_norm 4096x65536 bf16 0.281 ms against the library's
// 0.324, rms_norm 0.278 against 0.273. Its layer_norm form is now the library's
// forward_walk; the experiment left (git show b704020:benchmarks/native/row_variants.cu).

// ---- layer_norm ---------------------------------------------------------------------------

// ---- softmax backward: from y, or from x with y recomputed (session 9) -----------------------
// One CTA a row, no row loop (grid = rows), THREADS x ITEMS vectors of `in` (y, or x with
// FROM_X) and dy held packed in registers. FROM_X: each thread sums exp2 and exp2 * dy
// against its warp's max, and the warps' (max, sum, dot) triples merge once (lanes < warps
// each rescale one: one EX2 a thread). KEEP: the exponentials are kept in f32 and the output
// rescaled per warp (one EX2 an element) instead of evaluated again. The library's backward
// from x (run 19a, branch softmax-recompute) walked rows with the next one in registers and
// evaluated each exponential twice: 17-22% slower than from y in bf16; these variants ask
// whether that is the recompute itself.
// Calls f(k, a, b) with vector k of `av` and of `bv` unpacked to f32.
template <int ITEMS, typename F>
__device__ __forceinline__ void each_pair(const uint4 (&av)[ITEMS], const uint4 (&bv)[ITEMS], F f) {
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float a[8], b[8];
    unpack(av[k], a);
    unpack(bv[k], b);
    f(k, a, b);
  }
}

template <int THREADS, int ITEMS, bool FROM_X, bool KEEP>
__global__ void __launch_bounds__(THREADS) softmax_bwd_cta(const bf16* __restrict__ in,
                                                           const bf16* __restrict__ dy,
                                                           bf16* __restrict__ dx, int n,
                                                           float scale) {
  __shared__ float4 red[THREADS / 32];
  __shared__ float buf[THREADS / 32];
  const int64_t row = blockIdx.x;
  const uint4* i4 = reinterpret_cast<const uint4*>(in + row * n);
  const uint4* g4 = reinterpret_cast<const uint4*>(dy + row * n);
  uint4* o4 = reinterpret_cast<uint4*>(dx + row * n);
  uint4 iv[ITEMS], gv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    iv[k] = ld16<2>(i4 + threadIdx.x + k * THREADS);
    gv[k] = ld16<2>(g4 + threadIdx.x + k * THREADS);
  }
  auto store = [&](int k, const float (&v)[8]) { st16<1>(o4 + threadIdx.x + k * THREADS, pack(v)); };
  if constexpr (!FROM_X) {
    float dot = 0.f;
    each_pair(iv, gv, [&](int, const float (&y)[8], const float (&g)[8]) {
#pragma unroll
      for (int j = 0; j < 8; ++j) dot += y[j] * g[j];
    });
    dot = block_reduce<THREADS>(dot, buf);
    each_pair(iv, gv, [&](int k, const float (&y)[8], const float (&g)[8]) {
      float out[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) out[j] = scale * y[j] * (g[j] - dot);
      store(k, out);
    });
  } else {
    const float kl = scale * 1.4426950408889634f;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float m = -INFINITY;
    each_pair(iv, gv, [&](int, const float (&x)[8], const float (&)[8]) {
#pragma unroll
      for (int j = 0; j < 8; ++j) m = fmaxf(m, kl * x[j]);
    });
    m = warp_max(m);
    float e[KEEP ? ITEMS : 1][8];
    float s = 0.f, d = 0.f;
    each_pair(iv, gv, [&](int k, const float (&x)[8], const float (&g)[8]) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float v = xpu::cuda::ex2_ftz(kl * x[j] - m);
        s += v;
        d += v * g[j];
        if constexpr (KEEP) e[k][j] = v;
      }
    });
    s = warp_sum(s);
    d = warp_sum(d);
    if (lane == 0) red[warp] = make_float4(m, s, d, 0.f);
    __syncthreads();
    const float4 w = lane < THREADS / 32 ? red[lane] : make_float4(-INFINITY, 0.f, 0.f, 0.f);
    const float rm = warp_max(w.x);
    const float f = xpu::cuda::ex2_ftz(w.x - rm);
    const float rs = warp_sum(w.y * f), rd = warp_sum(w.z * f);
    const float inv = 1.0f / rs, dot = rd * inv;
    // KEEP: y = e * 2^(m - rm) / rs, one factor for the warp.
    const float c = scale * inv * (KEEP ? xpu::cuda::ex2_ftz(m - rm) : 1.f);
    each_pair(iv, gv, [&](int k, const float (&x)[8], const float (&g)[8]) {
      float out[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float y = KEEP ? e[k][j] * c : xpu::cuda::ex2_ftz(kl * x[j] - rm) * c;
        out[j] = y * (g[j] - dot);
      }
      store(k, out);
    });
  }
}

template <int THREADS, int ITEMS, int LD, int ST>
__global__ void __launch_bounds__(THREADS) layer_cta(const bf16* __restrict__ x,
                                                     const bf16* __restrict__ w,
                                                     const bf16* __restrict__ b,
                                                     bf16* __restrict__ y, float* __restrict__ mean_out,
                                                     float* __restrict__ rstd_out, int n, float eps) {
  __shared__ float buf[2][THREADS / 32];
  const int64_t row = blockIdx.x;
  const uint4* x4 = reinterpret_cast<const uint4*>(x + row * n);
  float f[ITEMS][8];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) unpack(ld16<LD>(x4 + threadIdx.x + k * THREADS), f[k]);
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
#pragma unroll
    for (int j = 0; j < 8; ++j) s += f[k][j];
  const float mean = block_reduce<THREADS>(s, buf[0]) / n;
  float v = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      f[k][j] -= mean;
      v += f[k][j] * f[k][j];
    }
  const float r = rsqrtf(block_reduce<THREADS>(v, buf[1]) / n + eps);
  if (threadIdx.x == 0) {
    mean_out[row] = mean;
    rstd_out[row] = r;
  }
  const uint4* w4 = reinterpret_cast<const uint4*>(w);
  const uint4* b4 = reinterpret_cast<const uint4*>(b);
  uint4* y4 = reinterpret_cast<uint4*>(y + row * n);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    float g[8], h[8];
    unpack(__ldg(w4 + threadIdx.x + k * THREADS), g);
    unpack(__ldg(b4 + threadIdx.x + k * THREADS), h);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[k][j] = f[k][j] * r * g[j] + h[j];
    st16<ST>(y4 + threadIdx.x + k * THREADS, pack(f[k]));
  }
}

// ---- rms_norm backward ----------------------------------------------------------------------
// dx = r * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * r; dw = sum over rows dy * xhat.
// G row groups (CTAs) each accumulate dw for their rows in f32 registers and write one partial
// row; rms_bwd_reduce sums the G partials per column in a fixed order.
// MODE bit 0: rows of a group contiguous (chunk) instead of strided (g, g + G, ...);
// bit 1: the next row's x and dy prefetched into registers. The library's fused backward
// (kernels/common/norm_backward.cuh) runs 25% slower than bits 0 | 1 at the same grid and tile
// (run 15b); bits 2-4 add what the library does differently, one at a time, to find which
// costs it: bit 2 the thread count from blockDim (offsets computed, not immediates), bit 3
// `col < n` predicates on every vector, bit 4 the pointers from a struct argument
// (rms_bwd_args: no __restrict__ on them).
template <int THREADS, int ITEMS, int MODE>
__device__ __forceinline__ void rms_bwd_body(const bf16* x, const bf16* dy, const bf16* w,
                                             const float* rstd, bf16* dx, float* partial,
                                             int64_t rows, int n) {
  constexpr bool CHUNK = MODE & 1, PREFETCH = MODE & 2, PRED = MODE & 8;
  const int TS = (MODE & 4) ? static_cast<int>(blockDim.x) : THREADS;
  auto in = [&](int k) { return !PRED || (static_cast<int>(threadIdx.x) + k * TS) * 8 < n; };
  __shared__ float buf[2][THREADS / 32];
  const int64_t groups = gridDim.x, g = blockIdx.x;
  const int64_t per = (rows + groups - 1) / groups;
  const int64_t first = CHUNK ? g * per : g, step = CHUNK ? 1 : groups;
  const int64_t last = CHUNK ? (g * per + per < rows ? g * per + per : rows) : rows;
  const int per_row = n / 8;
  const uint4* x4 = reinterpret_cast<const uint4*>(x);
  const uint4* g4 = reinterpret_cast<const uint4*>(dy);
  float acc[ITEMS][8];
  uint4 wq[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (in(k)) wq[k] = __ldg(reinterpret_cast<const uint4*>(w) + threadIdx.x + k * TS);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[k][j] = 0.f;
  }
  uint4 xv[ITEMS], gv[ITEMS], xn[ITEMS], gn[ITEMS];
  if (first < last) {
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (in(k)) {
        xv[k] = x4[first * per_row + threadIdx.x + k * TS];
        gv[k] = g4[first * per_row + threadIdx.x + k * TS];
      }
    }
  }
  auto unpack_item = [&](int k, float* fx, float* fg, float* fw) {
    unpack(xv[k], fx);
    unpack(gv[k], fg);
    unpack(wq[k], fw);
  };
  int parity = 0;
  for (int64_t row = first; row < last; row += step, parity ^= 1) {
    const int64_t next = row + step;
    if (PREFETCH && next < last) {
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        if (in(k)) {
          xn[k] = x4[next * per_row + threadIdx.x + k * TS];
          gn[k] = g4[next * per_row + threadIdx.x + k * TS];
        }
      }
    }
    const float r = rstd[row];
    float sgx = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (!in(k)) continue;
      float fx[8], fg[8], fw[8];
      unpack_item(k, fx, fg, fw);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float xhat = fx[j] * r;
        sgx += fg[j] * fw[j] * xhat;
        acc[k][j] += fg[j] * xhat;
      }
    }
    const float mgx = block_reduce<THREADS>(sgx, buf[parity]) / n;
    uint4* d4 = reinterpret_cast<uint4*>(dx + row * n);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (!in(k)) continue;
      float fx[8], fg[8], fw[8];
      unpack_item(k, fx, fg, fw);  // again after the reduction: the row stays packed
#pragma unroll
      for (int j = 0; j < 8; ++j) fx[j] = r * (fg[j] * fw[j] - fx[j] * r * mgx);
      d4[threadIdx.x + k * TS] = pack(fx);
    }
    if (next < last) {
      if constexpr (PREFETCH) {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
          xv[k] = xn[k];
          gv[k] = gn[k];
        }
      } else {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
          if (in(k)) {
            xv[k] = x4[next * per_row + threadIdx.x + k * TS];
            gv[k] = g4[next * per_row + threadIdx.x + k * TS];
          }
        }
      }
    }
  }
  float* out = partial + g * n;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (!in(k)) continue;
    const int col = (threadIdx.x + k * TS) * 8;
#pragma unroll
    for (int j = 0; j < 8; j += 4)
      *reinterpret_cast<float4*>(out + col + j) =
          make_float4(acc[k][j], acc[k][j + 1], acc[k][j + 2], acc[k][j + 3]);
  }
}

template <int THREADS, int ITEMS, int MODE>
__global__ void __launch_bounds__(THREADS) rms_bwd(const bf16* __restrict__ x,
                                                   const bf16* __restrict__ dy,
                                                   const bf16* __restrict__ w,
                                                   const float* __restrict__ rstd,
                                                   bf16* __restrict__ dx, float* __restrict__ partial,
                                                   int64_t rows, int n) {
  rms_bwd_body<THREADS, ITEMS, MODE>(x, dy, w, rstd, dx, partial, rows, n);
}

struct BwdArgs {
  const bf16 *x, *dy, *w;
  const float* rstd;
  bf16* dx;
  float* partial;
  int64_t rows;
  int n;
};

template <int THREADS, int ITEMS, int MODE>
__global__ void __launch_bounds__(THREADS) rms_bwd_args(const BwdArgs a) {
  rms_bwd_body<THREADS, ITEMS, MODE>(a.x, a.dy, a.w, a.rstd, a.dx, a.partial, a.rows, a.n);
}

// dw[c] = sum over g of partial[g * n + c]: 32 columns x 16 lanes a block, lanes over groups.
__global__ void __launch_bounds__(512) rms_bwd_reduce(const float* __restrict__ partial,
                                                      int64_t groups, int n,
                                                      bf16* __restrict__ dw) {
  __shared__ float lane_sum[16][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.f;
#pragma unroll 4
  for (int64_t g = threadIdx.y; g < groups; g += 16) acc += partial[g * n + col];
  lane_sum[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    float s = 0.f;
#pragma unroll
    for (int y = 0; y < 16; ++y) s += lane_sum[y][threadIdx.x];
    dw[col] = __float2bfloat16_rn(s);
  }
}

// ---- rms_norm backward, rows staged in shared memory by TMA bulk copies ---------------------
// Issue 16: the register-held walk (rms_bwd, the library's fused_norm_backward) keeps one row
// ahead in registers, 2 CTAs an SM: ~32 KB in flight an SM at 4096 columns, about what
// 4.25 TB/s needs at ~1 us latency (Little's law: 4.25 TB/s x 1 us / 132 SMs), so every
// stall between a row's arrival and the next row's loads costs bandwidth. Here thread 0 keeps
// STAGES - 1 rows ahead in a shared-memory ring with cp.async.bulk (x and dy of a row on one
// mbarrier), so bytes in flight no longer cost registers. Stage s is refilled after the
// reduction barrier of the row after the one it held: by then every thread has finished with
// it. Chunked rows (a CTA walks rows first .. last), dweight partials as rms_bwd.
// n == THREADS * ITEMS * 8 only.
__device__ __forceinline__ void bulk_g2s(uint32_t dst, const void* src, int bytes, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
      :: "r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t phase) {
  for (;;) {
    uint32_t done;
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
        : "=r"(done) : "r"(bar), "r"(phase) : "memory");
    if (done) return;
  }
}

// RECOMPUTE (session 18, prepared for the bisection toward the library, whose backward
// runs the 8192-column rows 10% slower, run 27b): rstd recomputed as the library does, one
// float2 reduction of (x^2, g * x) by the library's cta_reduce_flat, dweight accumulated in
// the second pass once rstd is known; `rstd` unused.
template <int THREADS, int ITEMS, int STAGES, bool RECOMPUTE = false>
__global__ void __launch_bounds__(THREADS) rms_bwd_tma(const bf16* __restrict__ x,
                                                       const bf16* __restrict__ dy,
                                                       const bf16* __restrict__ w,
                                                       const float* __restrict__ rstd,
                                                       bf16* __restrict__ dx,
                                                       float* __restrict__ partial, int64_t rows,
                                                       int n, float eps = 0.f) {
  constexpr int kVecs = THREADS * ITEMS, kBytes = kVecs * 16;
  extern __shared__ __align__(128) uint4 ring[];  // [STAGES][2][kVecs]: x, then dy
  __shared__ alignas(8) uint64_t full[STAGES];
  __shared__ float buf[2][THREADS / 32];
  __shared__ alignas(16) float2 buf2[2][32];
  const int64_t groups = gridDim.x, g = blockIdx.x;
  const int64_t per = (rows + groups - 1) / groups;
  const int64_t first = g * per, last = first + per < rows ? first + per : rows;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < STAGES; ++s)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_u32(&full[s])));
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  auto issue = [&](int64_t row, int s) {
    const uint32_t bar = smem_u32(&full[s]);
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                 :: "r"(bar), "r"(2 * kBytes) : "memory");
    bulk_g2s(smem_u32(ring + 2 * s * kVecs), x + row * n, kBytes, bar);
    bulk_g2s(smem_u32(ring + (2 * s + 1) * kVecs), dy + row * n, kBytes, bar);
  };
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < STAGES; ++s)
      if (first + s < last) issue(first + s, s);
  }
  float acc[ITEMS][8];
  uint4 wq[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    wq[k] = __ldg(reinterpret_cast<const uint4*>(w) + threadIdx.x + k * THREADS);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[k][j] = 0.f;
  }
  float r_next = !RECOMPUTE && first < last ? rstd[first] : 0.f;
  int s = 0;
  uint32_t phase = 0;
#pragma unroll 1
  for (int64_t row = first; row < last; ++row) {
    float r = r_next;
    if (!RECOMPUTE && row + 1 < last) r_next = rstd[row + 1];
    mbar_wait(smem_u32(&full[s]), phase);
    const uint4* xs = ring + 2 * s * kVecs;
    const uint4* gs = xs + kVecs;
    // f(k, x, dy, w) for each of the thread's vectors of the staged row, unpacked to f32.
    auto each_vec = [&](auto f) {
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        float fx[8], fg[8], fw[8];
        unpack(xs[threadIdx.x + k * THREADS], fx);
        unpack(gs[threadIdx.x + k * THREADS], fg);
        unpack(wq[k], fw);
        f(k, fx, fg, fw);
      }
    };
    float mgx;
    if constexpr (RECOMPUTE) {
      float2 sums = make_float2(0.f, 0.f);
      each_vec([&](int, float (&fx)[8], float (&fg)[8], float (&fw)[8]) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          sums.x += fx[j] * fx[j];
          sums.y += fg[j] * fw[j] * fx[j];
        }
      });
      sums = xpu::cuda::cta_reduce_flat<xpu::cuda::SumOp, THREADS / 32>(sums, buf2[(row - first) & 1]);
      r = rsqrtf(sums.x / n + eps);
      mgx = r * sums.y / n;
    } else {
      float sgx = 0.f;
      each_vec([&](int k, float (&fx)[8], float (&fg)[8], float (&fw)[8]) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float xhat = fx[j] * r;
          sgx += fg[j] * fw[j] * xhat;
          acc[k][j] += fg[j] * xhat;
        }
      });
      mgx = block_reduce<THREADS>(sgx, buf[(row - first) & 1]) / n;
    }
    // Past this barrier no thread reads the previous row's stage: refill it.
    if (threadIdx.x == 0 && row > first && row - 1 + STAGES < last)
      issue(row - 1 + STAGES, s == 0 ? STAGES - 1 : s - 1);
    uint4* d4 = reinterpret_cast<uint4*>(dx + row * n);
    each_vec([&](int k, float (&fx)[8], float (&fg)[8], float (&fw)[8]) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if constexpr (RECOMPUTE) acc[k][j] += fg[j] * fx[j] * r;
        fx[j] = r * (fg[j] * fw[j] - fx[j] * r * mgx);
      }
      d4[threadIdx.x + k * THREADS] = pack(fx);
    });
    if (++s == STAGES) {
      s = 0;
      phase ^= 1;
    }
  }
  float* out = partial + g * n;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = (threadIdx.x + k * THREADS) * 8;
#pragma unroll
    for (int j = 0; j < 8; j += 4)
      *reinterpret_cast<float4*>(out + col + j) =
          make_float4(acc[k][j], acc[k][j + 1], acc[k][j + 2], acc[k][j + 3]);
  }
}

// ---- copy (the ceiling) -------------------------------------------------------------------

template <int ILP>
__global__ void __launch_bounds__(256) copy16(const uint4* __restrict__ src, uint4* __restrict__ dst,
                                              int64_t count) {
  const int64_t stride = int64_t(gridDim.x) * 256 * ILP;
  for (int64_t i = int64_t(blockIdx.x) * 256 * ILP + threadIdx.x; i < count; i += stride) {
    uint4 v[ILP];
#pragma unroll
    for (int k = 0; k < ILP; ++k)
      if (i + k * 256 < count) v[k] = ld16<2>(src + i + k * 256);
#pragma unroll
    for (int k = 0; k < ILP; ++k)
      if (i + k * 256 < count) dst[i + k * 256] = v[k];
  }
}

int sm_count() {
  static int count = [] {
    int dev = 0, c = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev);
    return c;
  }();
  return count;
}

template <typename K>
int resident(K kernel, int threads) {
  int blocks = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0);
  return blocks;
}

}  // namespace

// A variant: kind (0 cta, 1 warp, 2 pers), threads (cta/pers) or rows a CTA (warp),
// items, ld, st. Returns 0 on launch, -1 for a variant not compiled in, or a CUDA
// error code.
#define XPU_RMS_CTA(T, I, L, S)                                                              \
  if (kind == 0 && threads == T && items == I && ld == L && st == S) {                       \
    rms_cta<T, I, L, S><<<unsigned(rows), T, 0, stream>>>(x, w, y, rstd, n, eps);            \
    return int(cudaGetLastError());                                                          \
  }
#define XPU_RMS_WARP(R, I, L, S)                                                             \
  if (kind == 1 && threads == R && items == I && ld == L && st == S) {                       \
    rms_warp<R, I, L, S><<<unsigned((rows + R - 1) / R), 32 * R, 0, stream>>>(x, w, y, rstd, \
                                                                               rows, n, eps); \
    return int(cudaGetLastError());                                                          \
  }
#define XPU_RMS_PERS(T, I, L, S)                                                             \
  if (kind == 2 && threads == T && items == I && ld == L && st == S) {                       \
    const int64_t grid = int64_t(resident(rms_pers<T, I, L, S>, T)) * sm_count();            \
    rms_pers<T, I, L, S><<<unsigned(grid < rows ? grid : rows), T, 0, stream>>>(             \
        x, w, y, rstd, rows, n, eps);                                                        \
    return int(cudaGetLastError());                                                          \
  }
#define XPU_RMS_LOOP(T, U, L, S)                                                             \
  if (kind == 3 && threads == T && items == U && ld == L && st == S) {                       \
    rms_loop<T, U, L, S><<<unsigned(rows), T, 0, stream>>>(x, w, y, rstd, n, eps);           \
    return int(cudaGetLastError());                                                          \
  }

extern "C" int xpv_rms(int kind, int threads, int items, int ld, int st, const bf16* x,
                       const bf16* w, bf16* y, float* rstd, int64_t rows, int n, float eps,
                       cudaStream_t stream) {
  // 4096 columns: 512x1, 256x2, 128x4, 64x8; 8192: 1024x1, 512x2, 256x4, 128x8.
  XPU_RMS_CTA(512, 1, 0, 0) XPU_RMS_CTA(256, 2, 0, 0) XPU_RMS_CTA(128, 4, 0, 0)
  XPU_RMS_CTA(64, 8, 0, 0) XPU_RMS_CTA(1024, 1, 0, 0) XPU_RMS_CTA(128, 8, 0, 0)
  XPU_RMS_CTA(256, 4, 0, 0) XPU_RMS_CTA(512, 2, 0, 0)
  XPU_RMS_CTA(256, 2, 1, 0) XPU_RMS_CTA(256, 2, 2, 0) XPU_RMS_CTA(256, 2, 3, 0)
  XPU_RMS_CTA(256, 2, 0, 1) XPU_RMS_CTA(256, 2, 2, 1)
  XPU_RMS_CTA(128, 4, 2, 1) XPU_RMS_CTA(512, 2, 2, 1) XPU_RMS_CTA(256, 4, 2, 1)
  XPU_RMS_CTA(128, 4, 2, 0) XPU_RMS_CTA(512, 2, 2, 0) XPU_RMS_CTA(256, 4, 2, 0)
  // 65536 columns: one CTA of 1024 threads x 8 vectors a row (32 data registers a thread).
  XPU_RMS_CTA(1024, 8, 0, 0) XPU_RMS_CTA(1024, 8, 2, 1)
  XPU_RMS_CTA(1024, 8, 4, 0) XPU_RMS_CTA(1024, 8, 5, 0) XPU_RMS_CTA(1024, 8, 4, 1)
  XPU_RMS_WARP(4, 16, 0, 0) XPU_RMS_WARP(8, 16, 0, 0) XPU_RMS_WARP(4, 16, 2, 1)
  XPU_RMS_WARP(2, 16, 2, 1) XPU_RMS_WARP(4, 32, 2, 1)
  XPU_RMS_PERS(256, 2, 0, 0) XPU_RMS_PERS(256, 2, 2, 1) XPU_RMS_PERS(128, 4, 2, 1)
  XPU_RMS_PERS(512, 2, 2, 1) XPU_RMS_PERS(256, 4, 2, 1)
  XPU_RMS_LOOP(256, 1, 0, 0) XPU_RMS_LOOP(256, 2, 0, 0) XPU_RMS_LOOP(256, 4, 0, 0)
  XPU_RMS_LOOP(512, 1, 0, 0) XPU_RMS_LOOP(512, 2, 0, 0) XPU_RMS_LOOP(128, 4, 0, 0)
  XPU_RMS_LOOP(1024, 1, 0, 0) XPU_RMS_LOOP(1024, 2, 0, 0) XPU_RMS_LOOP(1024, 4, 0, 0)
  XPU_RMS_LOOP(256, 2, 0, 1)
  XPU_RMS_LOOP(512, 2, 6, 0) XPU_RMS_LOOP(512, 2, 7, 0) XPU_RMS_LOOP(512, 2, 8, 0)
  XPU_RMS_LOOP(512, 2, 9, 0) XPU_RMS_LOOP(512, 1, 6, 0) XPU_RMS_LOOP(256, 2, 6, 0)
  XPU_RMS_CTA(512, 2, 10, 0) XPU_RMS_CTA(256, 4, 10, 0) XPU_RMS_CTA(512, 2, 7, 0)
  return -1;
}

#define XPU_SOFTMAX(T, I, L, S)                                                              \
  if (threads == T && items == I && ld == L && st == S) {                                    \
    softmax_cta<T, I, L, S><<<unsigned(rows), T, 0, stream>>>(x, y, n);                      \
    return int(cudaGetLastError());                                                          \
  }

extern "C" int xpv_softmax(int threads, int items, int ld, int st, const bf16* x, bf16* y,
                           int64_t rows, int n, cudaStream_t stream) {
  XPU_SOFTMAX(256, 2, 0, 0) XPU_SOFTMAX(256, 2, 2, 1) XPU_SOFTMAX(128, 4, 2, 1)
  XPU_SOFTMAX(512, 1, 2, 1) XPU_SOFTMAX(512, 2, 2, 1) XPU_SOFTMAX(256, 4, 2, 1)
  XPU_SOFTMAX(1024, 1, 2, 1) XPU_SOFTMAX(1024, 8, 2, 1) XPU_SOFTMAX(512, 2, 0, 0)
  return -1;
}

// softmax_tma in clusters of C CTAs of T x I vectors; -1 where n is not C * T * I * 8 or
// the shape is not compiled in.
template <int T, int I, int C>
int launch_softmax_tma(const bf16* x, bf16* y, int64_t rows, int n, cudaStream_t stream) {
  if (n != C * T * I * 8) return -1;
  const int smem = T * I * 16;
  cudaError_t err = cudaFuncSetAttribute(softmax_tma<T, I, C>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err == cudaSuccess)
    err = xpu::cuda::launch_clustered_smem(softmax_tma<T, I, C>, unsigned(rows * C), T, C, smem,
                                           stream, x, y, n);
  return int(err);
}

extern "C" int xpv_softmax_tma(int cluster, int threads, int items, const bf16* x, bf16* y,
                               int64_t rows, int n, cudaStream_t stream) {
#define XPU_SOFTMAX_TMA(C, T, I) \
  if (cluster == C && threads == T && items == I) return launch_softmax_tma<T, I, C>(x, y, rows, n, stream);
  XPU_SOFTMAX_TMA(4, 256, 8) XPU_SOFTMAX_TMA(8, 256, 4) XPU_SOFTMAX_TMA(4, 512, 4)
  XPU_SOFTMAX_TMA(8, 128, 8) XPU_SOFTMAX_TMA(2, 512, 8) XPU_SOFTMAX_TMA(1, 1024, 8)
  XPU_SOFTMAX_TMA(2, 256, 2) XPU_SOFTMAX_TMA(1, 256, 4)
#undef XPU_SOFTMAX_TMA
  return -1;
}

#define XPU_SOFTMAX_BWD(T, I, X, K)                                                          \
  if (threads == T && items == I && from_x == X && keep == K) {                              \
    softmax_bwd_cta<T, I, X, K><<<unsigned(rows), T, 0, stream>>>(in, dy, dx, n, scale);     \
    return int(cudaGetLastError());                                                          \
  }

// softmax_bwd_cta; `in` is y, or x with from_x (keep: exponentials kept in f32).
extern "C" int xpv_softmax_bwd(int threads, int items, int from_x, int keep, const bf16* in,
                               const bf16* dy, bf16* dx, int64_t rows, int n, float scale,
                               cudaStream_t stream) {
  if (n != threads * items * 8) return -1;
#define XPU_SOFTMAX_BWD_ALL(T, I) \
  XPU_SOFTMAX_BWD(T, I, false, false) XPU_SOFTMAX_BWD(T, I, true, false) XPU_SOFTMAX_BWD(T, I, true, true)
  XPU_SOFTMAX_BWD_ALL(256, 2) XPU_SOFTMAX_BWD_ALL(512, 1) XPU_SOFTMAX_BWD_ALL(128, 4)
  XPU_SOFTMAX_BWD_ALL(512, 2) XPU_SOFTMAX_BWD_ALL(1024, 1) XPU_SOFTMAX_BWD_ALL(256, 4)
#undef XPU_SOFTMAX_BWD_ALL
  return -1;
}
#undef XPU_SOFTMAX_BWD

#define XPU_LAYER(T, I, L, S)                                                                \
  if (threads == T && items == I && ld == L && st == S) {                                    \
    layer_cta<T, I, L, S><<<unsigned(rows), T, 0, stream>>>(x, w, b, y, mean, rstd, n, eps); \
    return int(cudaGetLastError());                                                          \
  }

extern "C" int xpv_layer(int threads, int items, int ld, int st, const bf16* x, const bf16* w,
                         const bf16* b, bf16* y, float* mean, float* rstd, int64_t rows, int n,
                         float eps, cudaStream_t stream) {
  XPU_LAYER(256, 2, 0, 0) XPU_LAYER(256, 2, 2, 1) XPU_LAYER(128, 4, 2, 1) XPU_LAYER(512, 1, 2, 1)
  XPU_LAYER(512, 2, 2, 1) XPU_LAYER(256, 4, 2, 1) XPU_LAYER(1024, 1, 2, 1)
  XPU_LAYER(1024, 8, 2, 1) XPU_LAYER(512, 2, 0, 0)
  return -1;
}

extern "C" int xpv_copy(int ilp, int waves, const void* src, void* dst, int64_t bytes,
                        cudaStream_t stream) {
  const int64_t count = bytes / 16;
  const int64_t grid = int64_t(sm_count()) * 8 * waves;
  if (ilp == 1) copy16<1><<<unsigned(grid), 256, 0, stream>>>((const uint4*)src, (uint4*)dst, count);
  else if (ilp == 4) copy16<4><<<unsigned(grid), 256, 0, stream>>>((const uint4*)src, (uint4*)dst, count);
  else return -1;
  return int(cudaGetLastError());
}

#define XPU_RMS_BWD(T, I)                                                                     \
  if (threads == T && items == I) {                                                           \
    if (mode == 0) rms_bwd<T, I, 0><<<unsigned(groups), T, 0, stream>>>(x, dy, w, rstd, dx, partial, rows, n); \
    else if (mode == 1) rms_bwd<T, I, 1><<<unsigned(groups), T, 0, stream>>>(x, dy, w, rstd, dx, partial, rows, n); \
    else if (mode == 2) rms_bwd<T, I, 2><<<unsigned(groups), T, 0, stream>>>(x, dy, w, rstd, dx, partial, rows, n); \
    else rms_bwd<T, I, 3><<<unsigned(groups), T, 0, stream>>>(x, dy, w, rstd, dx, partial, rows, n); \
    ok = true;                                                                                \
  }

// partial: groups x n floats. Returns 0, -1 (not compiled in) or a CUDA error.
// Modes past 3 (the bisection bits), for the two tiles the library uses most.
template <int T, int I, int M>
void launch_bisect(const BwdArgs& a, int64_t groups, cudaStream_t stream) {
  if constexpr ((M & 16) != 0)
    rms_bwd_args<T, I, M><<<unsigned(groups), T, 0, stream>>>(a);
  else
    rms_bwd<T, I, M><<<unsigned(groups), T, 0, stream>>>(a.x, a.dy, a.w, a.rstd, a.dx, a.partial,
                                                         a.rows, a.n);
}
#define XPU_RMS_BWD_BISECT(T, I, M)                                                           \
  if (threads == T && items == I && mode == M) {                                              \
    launch_bisect<T, I, M>(BwdArgs{x, dy, w, rstd, dx, partial, rows, n}, groups, stream);    \
    ok = true;                                                                                \
  }
#define XPU_RMS_BWD_BISECTS(T, I)                                                             \
  XPU_RMS_BWD_BISECT(T, I, 7) XPU_RMS_BWD_BISECT(T, I, 11) XPU_RMS_BWD_BISECT(T, I, 19)       \
  XPU_RMS_BWD_BISECT(T, I, 31)

extern "C" int xpv_rms_bwd(int threads, int items, int mode, int64_t groups, const bf16* x,
                           const bf16* dy, const bf16* w, const float* rstd, bf16* dx,
                           float* partial, bf16* dw, int64_t rows, int n, cudaStream_t stream) {
  bool ok = false;
  if (mode > 3) {
    XPU_RMS_BWD_BISECTS(256, 2) XPU_RMS_BWD_BISECTS(512, 2)
  } else {
    XPU_RMS_BWD(128, 4) XPU_RMS_BWD(256, 2) XPU_RMS_BWD(512, 1) XPU_RMS_BWD(256, 4)
    XPU_RMS_BWD(512, 2)
  }
  if (!ok) return -1;
  rms_bwd_reduce<<<unsigned(n / 32), dim3(32, 16), 0, stream>>>(partial, groups, n, dw);
  return int(cudaGetLastError());
}

// The library's fused rms_norm backward for one-CTA rows (kernels/common/norm_backward.cuh,
// fused_norm_backward_staged) on the same data, at the library's launch for rms_norm (kNormStagedCtasPerSm
// CTAs an SM), then its partials' reduction. `groups` is ignored: the library picks them.
// The library recomputes rstd from x (eps 1e-6); the experiment kernels above read it.
extern "C" int xpv_lib_rms_bwd(int threads, int items, int64_t groups, const bf16* x,
                               const bf16* dy, const bf16* w, bf16* dx, float* partial, bf16* dw,
                               int64_t rows, int n, cudaStream_t stream) {
  using xpu::cuda::StagedRows;
  const xpu::cuda::NormBackwardArgs<bf16> a{dy, n, x, n, w, nullptr, nullptr, nullptr, 0, dx,
                                            partial, 0, rows, n, /*eps=*/1e-6f,
                                            threads * items * 8, 1, 2};
  const int smem = StagedRows<bf16, 2>::smem_bytes(n, a.stages);
  const unsigned g = unsigned(std::min<int64_t>(groups, int64_t{xpu::cuda::kNormStagedCtasPerSm} * sm_count()));
  auto run = [&](auto kernel) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    kernel<<<g, threads, smem, stream>>>(a);
  };
  if (items == 1) run(xpu::cuda::fused_norm_backward_staged<bf16, 1, false, false>);
  else if (items == 2) run(xpu::cuda::fused_norm_backward_staged<bf16, 2, false, false>);
  else return -1;
  if (!xpu::cuda::launch_param_reduce<bf16>(partial, 0, g, n, dw, nullptr, stream, "x").ok())
    return -1;
  return int(cudaGetLastError());
}

// rms_bwd_tma with T x I vectors and S stages, `groups` CTAs, then the partials' reduction.
// Returns 0, -1 (n is not T * I * 8, or the shape is not compiled in) or a CUDA error.
template <int T, int I, int S, bool RECOMPUTE = false>
int launch_rms_bwd_tma(int64_t groups, const bf16* x, const bf16* dy, const bf16* w,
                       const float* rstd, bf16* dx, float* partial, bf16* dw, int64_t rows, int n,
                       cudaStream_t stream, float eps = 0.f) {
  if (n != T * I * 8) return -1;
  const int smem = S * 2 * T * I * 16;
  cudaError_t err = cudaFuncSetAttribute(rms_bwd_tma<T, I, S, RECOMPUTE>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err != cudaSuccess) return int(err);
  rms_bwd_tma<T, I, S, RECOMPUTE><<<unsigned(groups), T, smem, stream>>>(x, dy, w, rstd, dx,
                                                                        partial, rows, n, eps);
  rms_bwd_reduce<<<unsigned(n / 32), dim3(32, 16), 0, stream>>>(partial, groups, n, dw);
  return int(cudaGetLastError());
}

extern "C" int xpv_rms_bwd_tma(int threads, int items, int stages, int64_t groups, const bf16* x,
                               const bf16* dy, const bf16* w, const float* rstd, bf16* dx,
                               float* partial, bf16* dw, int64_t rows, int n,
                               cudaStream_t stream) {
#define XPU_RMS_BWD_TMA(T, I, S)                                                             \
  if (threads == T && items == I && stages == S)                                             \
    return launch_rms_bwd_tma<T, I, S>(groups, x, dy, w, rstd, dx, partial, dw, rows, n, stream);
  XPU_RMS_BWD_TMA(256, 2, 2) XPU_RMS_BWD_TMA(256, 2, 3) XPU_RMS_BWD_TMA(256, 2, 4)
  XPU_RMS_BWD_TMA(128, 4, 3) XPU_RMS_BWD_TMA(128, 4, 4) XPU_RMS_BWD_TMA(512, 1, 3)
  XPU_RMS_BWD_TMA(512, 2, 2) XPU_RMS_BWD_TMA(512, 2, 3) XPU_RMS_BWD_TMA(256, 4, 2)
  XPU_RMS_BWD_TMA(256, 4, 3)
#undef XPU_RMS_BWD_TMA
  return -1;
}

// rms_bwd_tma recomputing rstd as the library does (RECOMPUTE), for the shapes the library
// takes at 4096 and 8192 bf16 columns.
extern "C" int xpv_rms_bwd_tma_recompute(int threads, int items, int stages, int64_t groups,
                                         const bf16* x, const bf16* dy, const bf16* w, bf16* dx,
                                         float* partial, bf16* dw, int64_t rows, int n, float eps,
                                         cudaStream_t stream) {
  if (threads == 512 && items == 2 && stages == 2)
    return launch_rms_bwd_tma<512, 2, 2, true>(groups, x, dy, w, nullptr, dx, partial, dw, rows,
                                               n, stream, eps);
  if (threads == 256 && items == 2 && stages == 2)
    return launch_rms_bwd_tma<256, 2, 2, true>(groups, x, dy, w, nullptr, dx, partial, dw, rows,
                                               n, stream, eps);
  return -1;
}


// The library's staged backward (fused_norm_backward_staged) in its own shape, 2 vectors a
// thread in up to 512 threads, one CTA a row up to 8192 bf16 columns, beyond that a cluster
// of n / 8192 CTAs (65536: clusters of 8 x 512 x 2), with the ring's stages given, one wave
// of the CTAs (clusters) resident at those stages (at most row_groups), then the partials'
// reduction. -1 where the shape does not apply or nothing fits. LEAN: the kernel's form that
// layer_norm's launcher takes on full rows (f32 weights, xhat in one FMA, no column tests;
// layer_norm's cluster row loop 722 -> 623 SASS instructions a thread at 110 registers,
// rms_norm's 644 -> 581 at 64 with 8 bytes of spill; ptxas -v, sm_90). Run 24a also timed
// layer_norm's cluster form capped for two CTAs an SM (64 registers, 100 bytes of spill):
// 0.601 ms at S2, 0.607 at S3, against 0.500.
template <bool CENTERED, bool LEAN = false>
int launch_bwd_ring(const xpu::cuda::NormBackwardArgs<bf16>& args, int stages, int64_t row_groups,
                    int64_t* groups_out, cudaStream_t stream, int cta_threads = 0) {
  using namespace xpu::cuda;
  constexpr int kItems = 2;
  const int slice_threads = cta_threads > 0 ? cta_threads : kMaxRowThreads;
  const int kSlice = slice_threads * kItems * 8;
  xpu::cuda::NormBackwardArgs<bf16> a = args;
  const int cluster = a.n > kSlice ? a.n / kSlice : 1;
  const int threads = std::min(slice_threads, a.n / (kItems * 8));
  a.slice = threads * kItems * 8;
  a.csize = cluster;
  a.stages = stages;
  if (a.n != cluster * a.slice || threads % 32 || cluster > 8 || (cluster & (cluster - 1)) ||
      stages < 2 || stages > kMaxRingStages)
    return -1;
  constexpr int kMin = kNormBackwardMinBlocks<CENTERED, kItems>;
  auto* fn = cluster > 1 ? fused_norm_backward_staged<bf16, kItems, false, CENTERED, true, kMin, LEAN>
                         : fused_norm_backward_staged<bf16, kItems, false, CENTERED, false, kMin, LEAN>;
  const int smem = StagedRows<bf16, 2>::smem_bytes(a.slice, stages);
  bool fits = false;
  if (!allow_dynamic_smem(reinterpret_cast<const void*>(fn), smem, &fits).ok() || !fits)
    return -1;
  int resident = 0;
  if (!resident_count(reinterpret_cast<const void*>(fn), threads, cluster, &resident, smem).ok() ||
      resident <= 0)
    return -1;
  const int64_t groups = std::min<int64_t>({int64_t{resident}, row_groups, a.rows});
  *groups_out = groups;
  return int(launch_clustered_smem(fn, unsigned(groups * cluster), threads, cluster, smem, stream,
                                   a));
}

// The library's number of row groups (the workspace's partial rows) for rows x n.
extern "C" int64_t xpv_bwd_row_groups(int64_t rows, int n) {
  return xpu::ops::norm_backward_row_groups(rows, n);
}

// The norms' fused backward (bf16), stages 0: through the library's own launcher
// (launch_fused_norm_backward: its shape, groups, ring and form), else launch_bwd_ring with
// those stages (and, lean 1, the kernel's LEAN form); the library's row groups
// (xpv_bwd_row_groups: partial holds 2 x that many rows of n), then the partials' reduction;
// *groups_out: the groups launched. (Run 22b timed the register split walk the staged one
// replaced: results/row_variants_split_bwd_h200.txt.)
extern "C" int xpv_bwd_ring(int centered, int stages, int lean, int cta_threads, const bf16* x,
                            const bf16* dy,
                            const bf16* w, const float* mean, const float* rstd, bf16* dx,
                            float* partial, bf16* dw, bf16* db, int64_t rows, int n,
                            int64_t* groups_out, cudaStream_t stream) {
  const int64_t row_groups = xpu::ops::norm_backward_row_groups(rows, n);
  const int64_t bias_offset = centered ? row_groups * n : 0;
  const xpu::cuda::NormBackwardArgs<bf16> a{dy, n, x, n, w, mean, rstd, nullptr, 0, dx,
                                            partial, bias_offset, rows, n, /*eps=*/1e-6f,
                                            0, 0, 0};
  int64_t groups = 0;
  if (stages == 0) {
    const xpu::Status st =
        centered ? xpu::cuda::launch_fused_norm_backward<true>(a, 8, row_groups, stream, "x", &groups)
                 : xpu::cuda::launch_fused_norm_backward<false>(a, 8, row_groups, stream, "x",
                                                                &groups);
    if (!st.ok() || groups == 0) return -1;
  } else {
    const int rc = centered
                       ? (lean ? launch_bwd_ring<true, true>(a, stages, row_groups, &groups, stream, cta_threads)
                               : launch_bwd_ring<true>(a, stages, row_groups, &groups, stream, cta_threads))
                       : (lean ? launch_bwd_ring<false, true>(a, stages, row_groups, &groups, stream, cta_threads)
                               : launch_bwd_ring<false>(a, stages, row_groups, &groups, stream, cta_threads));
    if (rc) return rc;
  }
  *groups_out = groups;
  return xpu::cuda::launch_param_reduce<bf16>(partial, bias_offset, groups, n, dw,
                                              centered ? db : nullptr, stream, "x")
                 .ok()
             ? 0
             : -1;
}

// The library's reduction of `groups` rows of partials alone (launch_param_reduce), its
// 16-byte form where max_vec is 4 and the rows allow it, else the scalar one (the only form
// before session 18); dbias too where centered.
extern "C" int xpv_param_reduce(int centered, int max_vec, const float* partial, int64_t groups,
                                int64_t row_groups, int n, bf16* dw, bf16* db,
                                cudaStream_t stream) {
  const int64_t bias_offset = centered ? row_groups * n : 0;
  return xpu::cuda::launch_param_reduce<bf16>(partial, bias_offset, groups, n, dw,
                                              centered ? db : nullptr, stream, "x", max_vec)
                 .ok()
             ? 0
             : -1;
}

// The library's rms_norm forward_cta (bf16, no residual, rows forward_cta covers whole),
// the form the library picks for the shape (forward_kernel): form 0 at the library's shape
// for n (forward_shape: one CTA, a wide CTA of up to 1024 x 8, or a cluster), form 1 split
// over the cluster whatever the shape (cta_split, the library's choice for packed rows
// before run 26). -1 where the shape is not compiled here.
// (Run 26a timed w loaded before the reduction, into registers or by an L1 prefetch: slower.)
extern "C" int xpv_rms_fwd_cta(int form, const bf16* x, const bf16* w, bf16* y, int64_t rows,
                               int n, cudaStream_t stream) {
  namespace g = xpu::ops::rms_norm_detail::gpu;
  int max_cluster = 1;
  if (!xpu::cuda::max_cluster_size(&max_cluster).ok()) return -1;
  g::ForwardShape shape = g::forward_shape(n, 8, false, max_cluster);
  if (form == 1) shape = {xpu::cuda::cta_split(n, 8, max_cluster), false};
  const xpu::cuda::SplitShape s = shape.split;
  if (!xpu::cuda::row_fills_threads(n, s.cluster, s.threads, s.items, 8)) return -1;
  const g::ForwardCtaKernel<bf16> cta = g::forward_kernel<bf16>(shape, n, false);
  if (!cta) return -1;
  bool launched = false;
  const xpu::Status st = xpu::cuda::launch_rows(cta, rows, s.threads, s.cluster, stream, "x",
                                                &launched, x, int64_t{n}, nullptr, int64_t{0}, w,
                                                y, nullptr, n, s.slice, s.cluster, 1e-6f);
  if (!st.ok() || !launched) return -1;
  return int(cudaGetLastError());
}
