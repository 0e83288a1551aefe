// The fused backward of the row norms, shared by rms_norm and layer_norm: one
// read of x and dy gives dx and each row group's weight (and bias) gradient
// partials; a fixed-order column reduction then sums the groups' partials.
//   rms_norm   (CENTERED = false): xhat = x * r,          dx = r * (g - xhat * mean(g * xhat)) (+ dh)
//   layer_norm (CENTERED = true):  xhat = (x - mean) * r, dx = r * (g - mean(g) - xhat * mean(g * xhat))
// with g = dy * w, r = rstd; dweight = sum over rows of dy * xhat, dbias = sum of dy.
// rms_norm recomputes r from x (one float2 reduction: sum x^2 with sum g * x), so its
// backward needs only the forward's inputs and JAX can drop a forward whose outputs are
// dead; layer_norm reads the forward's saved mean and rstd.
// Device: norm_dx_vec (dx of one vector, also used by rms_norm's scalar-row
// kernels), fused_norm_backward_staged (one CTA or one cluster of CTAs a row, rows
// staged in shared memory by TMA), param_reduce. Host:
// launch_fused_norm_backward, launch_param_reduce.
// No atomics anywhere: every sum runs in a fixed order, so `fast` is deterministic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cluster_push.cuh"
#include "kernels/common/cta_row.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/common/staged_rows.cuh"

namespace xpu::cuda {

// Elements a thread of the fused kernel holds per row (x and dy, plus the f32
// accumulators): 16 compiles without spills (ptxas -v, sm_90).
inline constexpr int kNormFusedElems = 16;

// What dx of one row needs: the row's mean (layer_norm only), rstd, and the
// row means of g and of g * xhat.
struct RowGrad {
  float mean, rstd, mg, mgx;
  float shift;  // -mean * rstd, where FMA: xhat in one fused multiply-add
};

template <bool CENTERED, bool FMA = false>
__device__ __forceinline__ float norm_xhat(float x, const RowGrad& s) {
  if constexpr (CENTERED && FMA) return fmaf(x, s.rstd, s.shift);
  if constexpr (CENTERED) return (x - s.mean) * s.rstd;
  return x * s.rstd;
}

// dx for one vector of a row (+ dh, rms_norm's residual-branch gradient, with DH);
// w_at(j): the weight of element j as f32.
template <bool CENTERED, bool DH, bool FMA = false, typename T, int VEC, typename WAt>
__device__ __forceinline__ Vec<T, VEC> norm_dx_vec(const Vec<T, VEC>& x, const Vec<T, VEC>& dy,
                                                   WAt w_at, const Vec<T, VEC>& dh,
                                                   const RowGrad& s) {
  Vec<T, VEC> out;
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    const float xhat = norm_xhat<CENTERED, FMA>(to_f(x.v[j]), s);
    const float g = to_f(dy.v[j]) * w_at(j);
    float v;
    if constexpr (CENTERED)
      v = s.rstd * (g - s.mg - xhat * s.mgx);
    else
      v = s.rstd * (g - xhat * s.mgx);
    if constexpr (DH) v += to_f(dh.v[j]);
    out.v[j] = from_f<T>(v);
  }
  return out;
}

// The fused kernel's arguments (one struct keeps the kernel signature short).
template <typename T>
struct NormBackwardArgs {
  const T* dy;
  int64_t dy_stride;
  const T* x;
  int64_t x_stride;
  const T* w;
  const float* mean;  // row means (layer_norm); unused by rms_norm
  const float* rstd;  // row rstd (layer_norm); unused by rms_norm, which recomputes it
  const T* dh;  // rms_norm's residual-branch gradient, or null
  int64_t dh_stride;
  T* dx;  // dense rows of n
  // Group g's dweight partial at partial[g * n ...], its dbias partial (layer_norm)
  // at partial[bias_offset + g * n ...].
  float* partial;
  int64_t bias_offset;
  int64_t rows;
  int n;
  float eps;  // rms_norm's: rstd = rsqrt(mean(x^2) + eps); unused by layer_norm
  // Set by launch_fused_norm_backward: a CTA's columns, CTAs a row, the staged walk's
  // ring stages.
  int slice, csize, stages;
};

// Vectors a thread of the fused backward holds by preference (256 x 2 at 4096 bf16
// columns: 0.209 ms against 0.213 at 128 x 4 and 0.218 at 512 x 1, H200 run 13).
inline constexpr int kNormItems = 2;
// The staged walk: at most kNormStagedCtasPerSm CTAs an SM, each with the current row (or
// its slice of it) and enough rows ahead in its ring (ring_stages) to keep
// kNormAheadBytes in flight an SM. Rows split over a cluster took a register walk until
// run 22b (4096x65536 bf16: rows one ahead in registers, two ahead prefetched into L2 by
// the TMA unit, 30 clusters of 8 x 512 x 2): rms_norm 0.572 ms, layer_norm 0.670; staged,
// 0.491 and 0.538 (row_variants.py, results/row_variants_split_bwd_h200.txt). H200 run 17a (rms_norm backward, 256 x 2 at
// 32768x4096 bf16, 16 KB of x and dy a row; ms): 3 CTAs x 2 stages (48 KB ahead) 0.2059,
// 2 x 3 (64 KB) 0.2098, 4 x 2 (64 KB) 0.2158, 3 x 3 (96 KB) 0.2165, 2 x 2 (32 KB) 0.2361;
// 512 x 2 at 8192x8192 (32 KB a row): 2 x 2 (64 KB) 0.1092, 2 x 3 (128 KB) 0.1165.
// Rows split over a cluster keep twice that ahead: a stage is refilled only once the
// CTA has reduced its next row, and a cluster's rows take longer each (run 23a, rms_norm
// 4096x65536 bf16 at two CTAs an SM: 2 stages 0.449 ms, 3 stages 0.433; layer_norm at
// one CTA an SM: 2 stages 0.629, 3 0.557, 4 0.558).
inline constexpr int kNormStagedCtasPerSm = 3;
inline constexpr int64_t kNormAheadBytes = 48 * 1024;
inline constexpr int64_t kNormClusterAheadBytes = 2 * kNormAheadBytes;
// The ring's shared memory an SM (of 228 KB on sm_90, 1 KB a CTA reserved).
inline constexpr int64_t kNormRingSmemPerSm = 200 * 1024;

// One row's share of the fused backward in this thread: the thread's sums for the row
// reduction. layer_norm: (g, g * xhat), accumulating dweight and dbias into accw / accb.
// rms_norm: (x^2, g * x); its rstd is not known before the reduction, so its dweight is
// accumulated by norm_row_store_dx. Columns at or past n are skipped (all of them are
// in the row where FULL). w_at(k, j): the weight of vector k's element j as f32.
template <bool CENTERED, bool FULL = false, bool FMA = false, typename T, int VEC, int ITEMS,
          typename WAt>
__device__ __forceinline__ float2 norm_row_partials(
    const Vec<T, VEC> (&x)[ITEMS], const Vec<T, VEC> (&dy)[ITEMS], WAt w_at, const RowGrad& st,
    RowSlice sl, int n, float (&accw)[ITEMS][VEC], float (&accb)[ITEMS][VEC]) {
  float s0 = 0.f, s1 = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (FULL || sl.col(k) < n) {
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float gy = to_f(dy[k].v[j]), g = gy * w_at(k, j);
        if constexpr (CENTERED) {
          const float xhat = norm_xhat<CENTERED, FMA>(to_f(x[k].v[j]), st);
          s0 += g;
          s1 += g * xhat;
          accw[k][j] += gy * xhat;
          accb[k][j] += gy;
        } else {
          const float xv = to_f(x[k].v[j]);
          s0 += xv * xv;
          s1 += g * xv;
        }
      }
    }
  }
  return make_float2(s0, s1);
}

// The row's statistics from its reduced sums: st.mg and st.mgx (layer_norm); st.rstd
// and st.mgx = rstd * mean(g * x) (rms_norm, with a.eps).
template <bool CENTERED>
__device__ __forceinline__ void norm_row_means(RowGrad& st, float2 sums, float inv_n, float eps) {
  if constexpr (CENTERED) {
    st.mg = sums.x * inv_n;
    st.mgx = sums.y * inv_n;
  } else {
    st.rstd = rsqrtf(sums.x * inv_n + eps);  // the forward's formula
    st.mgx = st.rstd * sums.y * inv_n;
  }
}

// dx of one row (+ dh, loaded here, with DH); rms_norm also accumulates its dweight
// (dy * xhat) into accw here, once rstd is known.
template <bool CENTERED, bool DH, bool FULL = false, bool FMA = false, typename T, int VEC,
          int ITEMS, typename WAt>
__device__ __forceinline__ void norm_row_store_dx(const NormBackwardArgs<T>& a, int64_t row,
                                                  const Vec<T, VEC> (&x)[ITEMS],
                                                  const Vec<T, VEC> (&dy)[ITEMS], WAt w_at,
                                                  const RowGrad& st, RowSlice sl,
                                                  float (&accw)[ITEMS][VEC]) {
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = sl.col(k);
    if (FULL || col < a.n) {
      if constexpr (!CENTERED) {
#pragma unroll
        for (int j = 0; j < VEC; ++j)
          accw[k][j] += to_f(dy[k].v[j]) * norm_xhat<false>(to_f(x[k].v[j]), st);
      }
      Vec<T, VEC> extra;
      if constexpr (DH) extra = load_vec<T, VEC>(a.dh + row * a.dh_stride + col);
      store_vec<T, VEC>(a.dx + row * a.n + col,
                        norm_dx_vec<CENTERED, DH, FMA>(
                            x[k], dy[k], [&](int j) { return w_at(k, j); }, extra, st));
    }
  }
}

// A thread's VEC consecutive partial floats at p: 16-byte stores when `wide`
// (partials_wide). Why: one 4-byte store a float wrote 4 bytes of each 32-byte sector
// a warp's store touched, 8x the partials' bytes through L2 (8.6 MB at 8192x8192 bf16,
// 264 groups), all in the walk's tail, where no row's loads hide it; 16-byte stores
// halve each sector instead (the layout of run 17a's experiment kernel, rms_bwd_tma).
template <int VEC>
__device__ __forceinline__ void store_partial(float* p, const float (&acc)[VEC], bool wide) {
  if (wide) {
    Vec<float, VEC> v;
#pragma unroll
    for (int j = 0; j < VEC; ++j) v.v[j] = acc[j];
    store_vec<float, VEC>(p, v);
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) p[j] = acc[j];
  }
}
// Whether every thread's partials at partial[g * n + col] (and bias_offset past them),
// col a multiple of VEC, are 16-byte aligned.
template <int VEC>
__device__ __forceinline__ bool partials_wide(const float* partial, int n, int64_t bias_offset) {
  return VEC % 4 == 0 && n % 4 == 0 && bias_offset % 4 == 0 &&
         reinterpret_cast<uintptr_t>(partial) % 16 == 0;
}

// The group's dweight (and dbias) partials: partial[group * n + col ...].
template <bool CENTERED, typename T, int VEC, int ITEMS>
__device__ __forceinline__ void norm_store_partials(const NormBackwardArgs<T>& a, int64_t group,
                                                    RowSlice sl, const float (&accw)[ITEMS][VEC],
                                                    const float (&accb)[ITEMS][VEC]) {
  const bool wide = partials_wide<VEC>(a.partial, a.n, a.bias_offset);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = sl.col(k);
    if (col < a.n) {  // and so col + VEC <= n: the rows are whole vectors
      store_partial<VEC>(a.partial + group * a.n + col, accw[k], wide);
      if constexpr (CENTERED)
        store_partial<VEC>(a.partial + a.bias_offset + group * a.n + col, accb[k], wide);
    }
  }
}

// The saved row statistics (layer_norm: mean and rstd) of `row`, zeros past `last`;
// rms_norm loads nothing (norm_row_means recomputes its rstd).
template <bool CENTERED, typename T>
__device__ __forceinline__ RowGrad norm_row_stats(const NormBackwardArgs<T>& a, int64_t row,
                                                  int64_t last) {
  RowGrad st{0.f, 0.f, 0.f, 0.f};
  if constexpr (CENTERED) {
    if (row < last) {
      st.rstd = a.rstd[row];
      st.mean = a.mean[row];
    }
  }
  return st;
}

// Fused backward for 16-byte-aligned rows: a persistent grid of row groups, group g
// walking a contiguous chunk of rows whose x and dy TMA stages through a shared-memory
// ring (StagedRows, a.stages deep); a row is read from shared memory twice (its sums,
// then dx after the row reduction), so registers hold only the weight and the f32
// accumulators (kNormFusedElems elements a thread at most). One barrier a row
// (cta_reduce_flat), after which the previous row's stage is refilled. With CLUSTER a
// group is a cluster of a.csize CTAs, each staging its slice of the row's columns, and
// the row sums are pushed to the peers (ClusterPush). rms_norm's forms of up to two
// vectors a thread are held to 64 registers (two CTAs of 512 an SM: 8192 bf16 columns,
// run 17a's 2 x 2 shape); recomputing rstd took them from 64 to 79 (ptxas -v, sm_90: one
// CTA an SM), and at 64 they do not spill. layer_norm's (99) and four-vector forms would
// spill there.
template <bool CENTERED, int ITEMS>
inline constexpr int kNormBackwardMinBlocks = (!CENTERED && ITEMS <= 2) ? 2 : 1;
//
// LEAN: the weights held as f32 (converted once, not in both passes a row), xhat in one
// FMA, and no column tests or clamps (rows that fill every thread's vectors: n == csize x
// slice, slice == threads x ITEMS x VEC). Why: layer_norm's cluster row loop was 722 SASS
// instructions a thread (623 LEAN), which at one CTA of 512 an SM needs an issue every
// cycle to keep up with its 48 KB a row (docs/kernels/layer_norm.md, session 15). Taken
// by layer_norm (run 25a, 4096x65536 bf16: 0.502 -> 0.442 ms, 86% of the floor); rms_norm
// keeps the tested form (0.426 -> 0.443: its 64-register cap spills the f32 weights).
//
// FULL (implied by LEAN): no column tests or clamps, alone, for rms_norm, whose f32 weights
// would spill. WARPS: the CTA's warps known at compile time (0: blockDim's), so the row
// reduction reads the warps' sums without a test each (cta_reduce_flat). rms_norm's
// one-CTA row loop 566 -> ~470 SASS instructions, layer_norm's cluster loop 673 -> 583.
// H200 run 27b (backward alone with its reduction, bf16): the cluster rows at 4096x65536
// rms_norm 0.430 -> 0.422 ms, layer_norm 0.441 -> 0.421 (90-91% of the floor); rms_norm
// 32768x4096 0.2166 -> 0.2127; 8192x8192 unchanged (0.122 / 0.127), where run 17a's
// experiment kernel (row_variants.cu's rms_bwd_tma, saved rstd) runs 0.110.
template <bool CENTERED>
inline constexpr bool kNormLean = CENTERED;
// rms_norm's f16 rows keep the tested form: FULL spills 20 bytes there at the 64-register
// cap (ptxas -v, sm_90; bf16 and f32 spill none, or one reload a row).
template <bool CENTERED, typename T>
inline constexpr bool kNormFull = CENTERED || !std::is_same_v<T, __half>;
template <typename T, int ITEMS, bool DH, bool CENTERED, bool CLUSTER = false,
          int MIN_BLOCKS = kNormBackwardMinBlocks<CENTERED, ITEMS>, bool LEAN = false,
          bool FULL = LEAN, int WARPS = 0>
__global__ void __launch_bounds__(kMaxRowThreads, MIN_BLOCKS)
    fused_norm_backward_staged(const NormBackwardArgs<T> a) {
  static_assert(FULL || !LEAN, "LEAN rows are full rows");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int VEC = 16 / sizeof(T);
  using V = Vec<T, VEC>;
  using Sums = float2;
  using Ring = StagedRows<T, 2>;
  extern __shared__ __align__(128) unsigned char ring_smem[];
  __shared__ alignas(8) uint64_t ring_bars[kMaxRingStages];
  __shared__ alignas(16) Sums buf[2][32];
  __shared__ PushSlots<Sums> slots;
  ClusterPush<CLUSTER, Sums> push(slots, a.csize);
  const int rank = CLUSTER ? cluster_rank(a.csize) : 0;
  const RowSlice sl = row_slice<VEC>(rank, CLUSTER ? a.slice : 0);
  // This CTA's columns [begin, begin + cols): the whole row without CLUSTER.
  const int begin = CLUSTER ? min(rank * a.slice, a.n) : 0;
  const int cols = CLUSTER ? min(a.slice, a.n - begin) : a.n;
  const int64_t group = CLUSTER ? blockIdx.x / a.csize : blockIdx.x;
  const RowChunk rows = row_chunk(group, CLUSTER ? gridDim.x / a.csize : gridDim.x, a.rows);
  const float inv_n = __frcp_rn(static_cast<float>(a.n));
  RowSources<T, 2> src;
  src.ptr[0] = a.x + begin;
  src.stride[0] = a.x_stride;
  src.ptr[1] = a.dy + begin;
  src.stride[1] = a.dy_stride;
  Ring ring(ring_smem, ring_bars, a.stages, src, cols, rows.first, rows.last);

  // Columns past n re-read the slice's last vector (inside the slice, so inside the
  // stage: an empty slice reads its first vector, which no one uses).
  auto clamped = [&](int k) {
    if constexpr (FULL) return sl.col(k) - begin;
    return max(0, min(sl.col(k) - begin, cols - VEC));
  };
  float accw[ITEMS][VEC], accb[ITEMS][VEC];
  V wv[ITEMS];
  float wf[LEAN ? ITEMS : 1][VEC];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    wv[k] = load_vec<T, VEC>(a.w + min(begin + clamped(k), a.n - VEC));
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      accw[k][j] = accb[k][j] = 0.f;
      if constexpr (LEAN) wf[k][j] = to_f(wv[k].v[j]);
    }
  }
  auto w_at = [&](int k, int j) {
    if constexpr (LEAN) return wf[k][j];
    return to_f(wv[k].v[j]);
  };
  // Reads the row's x and dy from its stage.
  auto read = [&](V (&x)[ITEMS], V (&dy)[ITEMS]) {
    const T* xs = ring.row(0);
    const T* gs = ring.row(1);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      x[k] = *reinterpret_cast<const V*>(xs + clamped(k));
      dy[k] = *reinterpret_cast<const V*>(gs + clamped(k));
    }
  };
  RowGrad next = norm_row_stats<CENTERED>(a, rows.first, rows.last);
#pragma unroll 1
  for (int64_t row = rows.first; row < rows.last; ++row) {
    RowGrad st = next;
    if constexpr (LEAN) st.shift = -st.mean * st.rstd;
    next = norm_row_stats<CENTERED>(a, row + 1, rows.last);  // one row ahead
    ring.wait();
    Sums sums;
    {
      V x[ITEMS], dy[ITEMS];
      read(x, dy);
      sums = norm_row_partials<CENTERED, FULL, LEAN>(x, dy, w_at, st, sl, a.n, accw, accb);
    }
    const int parity = static_cast<int>(row - rows.first) & 1;
    const Sums cta_sums = cta_reduce_flat<SumOp, WARPS>(sums, buf[parity]);
    // A one-warp CTA's reduction has no barrier (shuffles only), and a lane's reads of the
    // previous row may still be in flight: the barrier orders them before the refill
    // (racecheck, 256 bf16 columns, 32 threads).
    if (blockDim.x == 32) __syncthreads();
    // Every thread is past its last read of the previous row. Refilled between the
    // cluster's push and its wait, not after the wait: a cluster row waits there on its
    // slowest CTA, and the refill's load overlaps that wait (run 23a, refilled before the
    // push: rms_norm 4096x65536 0.491 -> 0.449 ms, layer_norm 0.538 -> 0.557, its push
    // behind thread 0's refill at one CTA an SM).
    push.send(cta_sums, parity);
    ring.release_previous(row - 1);
    norm_row_means<CENTERED>(st, push.receive(cta_sums, parity, SumOp{}), inv_n, a.eps);
    V x[ITEMS], dy[ITEMS];
    read(x, dy);
    norm_row_store_dx<CENTERED, DH, FULL, LEAN>(a, row, x, dy, w_at, st, sl, accw);
    ring.next();
  }
  push.finish();
  norm_store_partials<CENTERED>(a, group, sl, accw, accb);
#endif
}

// out[c] = sum over groups of partial[g * n + c], in a fixed order. A block takes
// kReduceCols columns: (kReduceCols / VEC) threads a group row, each loading VEC floats
// (one 16-byte load where VEC is 4), and LANES rows of threads over the groups: lane y
// sums groups y, y + LANES, ... in order; then 16 lanes' worth of threads each add
// LANES / parts consecutive lanes, and one warp adds those parts in order. VEC 4 pays on
// long rows: at 4096x65536 bf16 (15-30 groups of 256 KB) 9.1 -> 4.4 us (layer_norm) and
// 6.4 -> 3.5 (rms_norm); at 4096-8192 columns (132-396 groups) both forms take 3.1-3.4 us,
// a launch and a DRAM round trip or two (H200 runs 27a-27b).
// blockIdx.y picks the parameter: 0 -> dweight, 1 -> dbias (partials + bias_offset).
inline constexpr int kReduceCols = 32;

template <typename T, int VEC, int LANES>
__global__ void __launch_bounds__(kReduceCols / VEC * LANES)
    param_reduce(const float* __restrict__ partial, int64_t bias_offset, int64_t groups, int n,
                 T* __restrict__ dw, T* __restrict__ db) {
  constexpr int kThreads = kReduceCols / VEC * LANES, kParts = kThreads / kReduceCols;
  static_assert(LANES % kParts == 0, "each part adds whole lanes");
  __shared__ float lane_sum[LANES][kReduceCols + 1];
  __shared__ float part_sum[kParts][kReduceCols + 1];
  const float* src = blockIdx.y == 0 ? partial : partial + bias_offset;
  T* out = blockIdx.y == 0 ? dw : db;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int col = blockIdx.x * kReduceCols + tx * VEC;
  float acc[VEC];
#pragma unroll
  for (int j = 0; j < VEC; ++j) acc[j] = 0.f;
  if (col < n) {
#pragma unroll 4
    for (int64_t g = ty; g < groups; g += LANES) {
      if constexpr (VEC == 4) {
        const float4 v = *reinterpret_cast<const float4*>(src + g * n + col);
        acc[0] += v.x;
        acc[1] += v.y;
        acc[2] += v.z;
        acc[3] += v.w;
      } else {
        acc[0] += src[g * n + col];
      }
    }
  }
#pragma unroll
  for (int j = 0; j < VEC; ++j) lane_sum[ty][tx * VEC + j] = acc[j];
  __syncthreads();
  const int t = ty * (kReduceCols / VEC) + tx, c = t % kReduceCols, part = t / kReduceCols;
  float s = 0.f;
#pragma unroll
  for (int y = 0; y < LANES / kParts; ++y) s += lane_sum[part * (LANES / kParts) + y][c];
  part_sum[part][c] = s;
  __syncthreads();
  const int out_col = blockIdx.x * kReduceCols + c;
  if (part == 0 && out_col < n) {
    s = 0.f;
#pragma unroll
    for (int q = 0; q < kParts; ++q) s += part_sum[q][c];
    out[out_col] = from_f<T>(s);
  }
}

// ---- host ----------------------------------------------------------------------------------

// dweight (and dbias when db is not null) from `groups` rows of partials. 16-byte loads
// where the partial rows allow them (n a multiple of 4, an aligned workspace) and
// max_vec is 4 (row_variants.py times max_vec 1 beside it); 64 lanes where there are
// groups for them.
template <typename T>
Status launch_param_reduce(const float* partial, int64_t bias_offset, int64_t groups, int n,
                           T* dw, T* db, cudaStream_t stream, const char* op, int max_vec = 4) {
  const dim3 grid(static_cast<unsigned>((n + kReduceCols - 1) / kReduceCols), db ? 2 : 1);
  const bool vec4 = max_vec >= 4 && n % 4 == 0 && bias_offset % 4 == 0 &&
                    reinterpret_cast<uintptr_t>(partial) % 16 == 0;
  if (vec4 && groups >= 64)
    param_reduce<T, 4, 64><<<grid, dim3(kReduceCols / 4, 64), 0, stream>>>(partial, bias_offset,
                                                                           groups, n, dw, db);
  else if (vec4)
    param_reduce<T, 4, 16><<<grid, dim3(kReduceCols / 4, 16), 0, stream>>>(partial, bias_offset,
                                                                           groups, n, dw, db);
  else
    param_reduce<T, 1, 16><<<grid, dim3(kReduceCols, 16), 0, stream>>>(partial, bias_offset,
                                                                      groups, n, dw, db);
  return launch_status(op);
}

// One staged walk the fused backward can launch: its kernel, split, ring stages and
// dynamic shared memory, CTAs resident an SM, and groups (CTAs, or clusters) resident at
// once. kernel is null where the split does not compile or fit.
template <typename T>
struct NormBackwardPlan {
  void (*kernel)(NormBackwardArgs<T>) = nullptr;
  SplitShape s{};
  int stages = 0, smem = 0, per_sm = 0;
  int64_t resident_groups = 0;
};

// The plan for split s: the FULL form where the row fills every thread's vectors
// (layer_norm's LEAN one, kNormLean), the CTA's warps at compile time where it has 8 or
// 16; CTAs an SM as two stages allow, then the stages that keep `ahead` bytes in flight an
// SM (a cluster's CTAs each stage their slice of the row).
template <bool CENTERED, typename T>
Status plan_fused_norm_backward(const NormBackwardArgs<T>& a, int vec, SplitShape s,
                                int64_t ahead, int sms, NormBackwardPlan<T>* plan) {
  *plan = {};
  constexpr int kVec = 16 / sizeof(T);
  const bool cluster = s.cluster > 1;
  const bool full =
      kNormFull<CENTERED, T> && row_fills_threads(a.n, s.cluster, s.threads, s.items, vec);
  const int warps = full && (s.threads == 256 || s.threads == 512) ? s.threads / 32 : 0;
  void (*kernel)(NormBackwardArgs<T>) = nullptr;
  with_vec_items<kVec, kNormFusedElems>(vec, s.items, [&]<int V, int I>() {
    if constexpr (V == kVec) {
      auto pick = [&]<bool DH>() {
        constexpr int kMin = kNormBackwardMinBlocks<CENTERED, I>;
        constexpr bool kLean = kNormLean<CENTERED>;
        auto full_form = [&]<int W>() {
          kernel = cluster ? &fused_norm_backward_staged<T, I, DH, CENTERED, true, kMin, kLean,
                                                         true, W>
                           : &fused_norm_backward_staged<T, I, DH, CENTERED, false, kMin, kLean,
                                                         true, W>;
        };
        if constexpr (kNormFull<CENTERED, T>) {
          if (warps == 16) return full_form.template operator()<16>();
          if (warps == 8) return full_form.template operator()<8>();
          if (full) return full_form.template operator()<0>();
        }
        kernel = cluster ? &fused_norm_backward_staged<T, I, DH, CENTERED, true>
                         : &fused_norm_backward_staged<T, I, DH, CENTERED>;
      };
      if constexpr (!CENTERED) {
        if (a.dh) return pick.template operator()<true>();
      }
      pick.template operator()<false>();
    }
  });
  if (!kernel) return Status::Ok();
  const void* fn = reinterpret_cast<const void*>(kernel);
  using Ring = StagedRows<T, 2>;
  const int cols = cluster ? s.slice : a.n;
  const int64_t row_bytes = 2 * int64_t{Ring::slot_bytes(cols)};
  bool fits = false;
  XPU_RETURN_IF_ERROR(allow_dynamic_smem(fn, Ring::smem_bytes(cols, kMaxRingStages), &fits));
  if (!fits) return Status::Ok();
  // resident: CTAs, or with a cluster clusters (which GPCs may leave some SMs without:
  // 15 clusters of 8 on the H200's 132 SMs), resident at once.
  int resident = 0;
  XPU_RETURN_IF_ERROR(
      resident_count(fn, s.threads, s.cluster, &resident, Ring::smem_bytes(cols, 2)));
  if (resident <= 0) return Status::Ok();
  const int64_t ctas = int64_t{resident} * s.cluster;
  const int per_sm = static_cast<int>(
      std::clamp<int64_t>(cluster ? (ctas + sms - 1) / sms : ctas / sms, 1, kNormStagedCtasPerSm));
  const int stages = ring_stages(per_sm, row_bytes, ahead, kNormRingSmemPerSm);
  const int smem = Ring::smem_bytes(cols, stages);
  XPU_RETURN_IF_ERROR(resident_count(fn, s.threads, s.cluster, &resident, smem));
  if (resident <= 0) return Status::Ok();
  // All resident at once: a persistent walk.
  plan->resident_groups = cluster ? resident : std::min<int64_t>(resident, int64_t{per_sm} * sms);
  plan->kernel = kernel;
  plan->s = s;
  plan->stages = stages;
  plan->smem = smem;
  plan->per_sm = per_sm;
  return Status::Ok();
}

// Launches the fused backward when the rows take 16-byte vectors (vec > 1) on an sm_90
// device (TMA, clusters) and a split of at most the device's cluster size fits
// kNormFusedElems a thread (kNormItems vectors where the row has work for them): the
// staged walk, one CTA or one cluster a row group. *groups: the row groups
// launched, at most row_groups (the workspace's partial rows); 0 when nothing was
// launched and the caller takes its other path.
//
// A row one CTA of 512 holds, where that CTA is resident once an SM, is split over a
// cluster of two CTAs of 256 instead when those are resident twice an SM: one CTA an SM
// idles its SM at every row's barrier, and two overlap each other's (H200 run 28b, layer_norm
// 8192x8192 bf16 backward with its reduction: 1 x 512 x 2, 0.1131 ms; 2 x 256 x 2, 0.1104).
// Such a split keeps the one-CTA walk's kNormAheadBytes: its CTAs wait on one peer, not on
// the seven of a 65536-column row (run 28b: 2 x 256 x 2 at three stages, 64 KB ahead an
// SM, 0.1104 ms; at four, 96 KB, 0.1196).
template <bool CENTERED, typename T>
Status launch_fused_norm_backward(NormBackwardArgs<T> a, int vec, int64_t row_groups,
                                  cudaStream_t stream, const char* op, int64_t* groups) {
  *groups = 0;
  constexpr int kVec = 16 / sizeof(T);
  if (vec != kVec || a.rows == 0) return Status::Ok();
  int max_cluster = 1, sms = 1;
  XPU_RETURN_IF_ERROR(max_cluster_size(&max_cluster));
  if (max_cluster <= 1) return Status::Ok();  // before sm_90: no TMA, no clusters
  XPU_RETURN_IF_ERROR(multiprocessor_count(&sms));
  const SplitShape s =
      split_shape(a.n, vec, kNormFusedElems, kMaxRowThreads, max_cluster, kNormItems);
  if (s.cluster == 0) return Status::Ok();
  NormBackwardPlan<T> plan;
  XPU_RETURN_IF_ERROR(plan_fused_norm_backward<CENTERED>(
      a, vec, s, s.cluster > 1 ? kNormClusterAheadBytes : kNormAheadBytes, sms, &plan));
  if (plan.kernel && s.cluster == 1 && s.threads == kMaxRowThreads && plan.per_sm == 1) {
    const SplitShape halves =
        split_shape(a.n, vec, kNormFusedElems, kMaxRowThreads / 2, max_cluster, kNormItems);
    NormBackwardPlan<T> paired;
    if (halves.cluster == 2)
      XPU_RETURN_IF_ERROR(
          plan_fused_norm_backward<CENTERED>(a, vec, halves, kNormAheadBytes, sms, &paired));
    if (paired.kernel && paired.per_sm >= 2) plan = paired;
  }
  if (!plan.kernel) return Status::Ok();
  a.slice = plan.s.slice;
  a.csize = plan.s.cluster;
  a.stages = plan.stages;
  const int64_t g = std::min<int64_t>({row_groups, a.rows, plan.resident_groups});
  XPU_RETURN_IF_ERROR(cuda_status(
      launch_clustered_smem(plan.kernel, static_cast<unsigned>(g * plan.s.cluster),
                            plan.s.threads, plan.s.cluster, plan.smem, stream, a),
      op, "fused backward launch"));
  *groups = g;
  return Status::Ok();
}

}  // namespace xpu::cuda
