// layer_norm forward on CUDA.
// fast / deterministic: the row is held in registers as 16-byte vectors (or
//   scalars for odd or unaligned rows). 16-byte rows that one CTA holds (up to 1024
//   threads at 4 vectors, or a packed row of 256 x 8: 16384 bf16 elements) take
//   forward_cta (cta_row.cuh: two plain reductions, no row loop); longer 16-byte rows
//   are split over clusters walking their rows persistently, each CTA holding its
//   slice of w and b in registers and staging its slice of x through a TMA ring
//   (forward_walk, sm_90). Other rows too long for one CTA are split over
//   a thread-block cluster of 2-8 CTAs (cuda::split_shape, the rule rms_norm
//   uses), each holding a slice in registers. One reduction a row (two sums, RowSum2: warp
//   trees, warps in order, CTAs in rank order through DSMEM, so `fast` is bitwise
//   deterministic) of d = x - shift and d^2, the shift being the mean of the row's
//   first 16 bytes; rows whose shift lies far from the mean (row_shift's note) take
//   a second, centred reduction, so the variance is never E[x^2] - E[x]^2 in
//   disguise. One read of x, one write of y, up to 8 CTAs' worth of row (131072
//   elements when 16-byte aligned, 32768 scalar). One CTA (or cluster) a row,
//   cuda::kPreferItems vectors a thread, as many as there are rows (H200 run 13:
//   the persistent ring of run 12 was 10-20% slower, docs/kernels/layer_norm.md).
// Longer rows, devices without clusters: a looped kernel (statistics per vector
//   merged with Chan's formula in a fixed tree, RowStats, then a second pass that
//   re-reads the row).
// reference: plain scalar loops re-reading the row (a mean, a variance and an
//   output pass).
#include <algorithm>
#include <type_traits>

#include "kernels/common/cta_row.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/common/staged_rows.cuh"
#include "kernels/layer_norm/cuda_common.cuh"

namespace xpu::ops::layer_norm_detail::gpu {
namespace {

using cuda::block_sum;
using cuda::cluster_exit;
using cuda::cluster_rank;
using cuda::from_f;
using cuda::load_vec;
using cuda::RowSlice;
using cuda::RowSum;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

// Elements a thread holds in registers per CTA slice: rms_norm's forward budget
// (x only: 16 registers at 32 bf16 elements; w and b are streamed at the output),
// and v1's 8 for scalar rows, where each element takes a register of its own;
// 4 for f32 scalar rows (ptxas spilled 20 bytes at 8).
constexpr int kForwardElems = 32;
template <typename T>
constexpr int kForwardScalarElems = sizeof(T) == 4 ? 4 : 8;

// Whether a kernel walks its rows one ahead (walk_rows, persistent grid): only
// where a thread holds one 16-byte vector a row, so that 16 bytes a thread would
// be all it has in flight. Measured on the H100 (docs/kernels/layer_norm.md): one
// ahead took bf16 32768x4096 from 0.261 to 0.221 ms but slowed 8192 columns
// (0.104 -> 0.113), f32 4096 columns (0.185 -> 0.200) and, at 16 elements a
// thread, 65536 columns (0.583 -> 0.826), where two items already fill the pipe.
template <int VEC, int ITEMS>
constexpr bool kRowAhead = VEC > 1 && ITEMS == 1;

// Blocks of 512 per SM that the register cap must allow (__launch_bounds__'s
// second argument), from ptxas -v, sm_90. One row ahead (both copies held):
// f32 4 blocks (32 registers), bf16 3 (40), f16 2 (at 40 it spilled 8 bytes).
// Otherwise, short rows are latency-bound and live on occupancy: f32 <= 8
// elements 3 (40 registers; at 32 the one-reduction statistics spilled 24
// bytes), 16 2, 32 1 (80-90); 16-bit <= 16 elements 3 (<= 40: bf16 8x2 spills 8
// bytes there, kept for its 3 blocks: 0.104 ms at 8192 columns), 32 2 (<= 64). Scalar rows (VEC 1, off the hot path): 1, since 16-bit
// scalars spilled 4-28 bytes at 40 registers.
template <typename T, int VEC, int ITEMS>
constexpr int forward_min_blocks() {
  if constexpr (VEC == 1) return 1;
  if constexpr (kRowAhead<VEC, ITEMS>)
    return sizeof(T) == 4 ? 4 : std::is_same_v<T, __nv_bfloat16> ? 3 : 2;
  if constexpr (sizeof(T) == 4) return VEC * ITEMS <= 8 ? 3 : VEC * ITEMS <= 16 ? 2 : 1;
  return VEC * ITEMS <= 16 ? 3 : 2;
}
template <typename T, int VEC, int ITEMS>
constexpr int kForwardMinBlocks = forward_min_blocks<T, VEC, ITEMS>();

// The one-CTA rows that also get a form without column tests (forward_cta's FULL) for
// rows that fill every thread's vectors: bf16 at 4 vectors a thread (8192 columns in 256
// threads). ptxas -v, sm_90: 64 registers against 59 with the tests (four CTAs of 256 an
// SM either way), 632 instructions against 776. Elsewhere the tests' absence cost CTAs an
// SM: bf16 <8, 2> 32 -> 48 registers, f16 <8, 4> 46 -> 64, <8, 8> 80 -> 127; f32 <4, 4>
// 44 -> 52 (five CTAs of 256 an SM -> four) ran 16384x4096 in 0.135 ms either way (run 24b).
template <typename T, int ITEMS>
constexpr bool kCtaFull = std::is_same_v<T, __nv_bfloat16> && ITEMS == 4;

// forward_walk's CTAs: cta_split's packed slice (up to kWideThreads x kPackedItems
// vectors) in twice the threads at half the vectors each (run 23a, 4096x65536 bf16: 4 x 512
// x 4 0.281 ms, 4 x 256 x 8 0.285), its x through a ring of three stages.
constexpr int kWalkThreads = 2 * cuda::kWideThreads;
constexpr int kWalkItems = cuda::kPackedItems / 2;
constexpr int kWalkStages = 3;

// Blocks of the looped and reference kernels; more rows are walked grid-stride.
constexpr int64_t kMaxRowBlocks = int64_t{1} << 20;

// Running statistics of a set of values: count, mean, sum of squared deviations.
struct Stats {
  float n, mean, m2;
};

// Chan et al.'s pairwise combination; an empty side leaves the other unchanged.
__device__ __forceinline__ Stats merge(const Stats& a, const Stats& b) {
  const float n = a.n + b.n;
  if (n == 0.f) return a;
  const float f = __fdiv_rn(b.n, n);
  const float d = b.mean - a.mean;
  return {n, a.mean + d * f, a.m2 + b.m2 + d * d * a.n * f};
}
// Lane 0 gets the warp's statistics, combined in a fixed tree.
__device__ __forceinline__ Stats warp_merge(Stats s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Stats t{__shfl_down_sync(0xffffffffu, s.n, o), __shfl_down_sync(0xffffffffu, s.mean, o),
                  __shfl_down_sync(0xffffffffu, s.m2, o)};
    s = merge(s, t);
  }
  return s;
}

// Chan merges as a cuda::RowReduce operation: statistics of a row held by the
// threads of a CTA (or a cluster), the warps' merged in warp order by every warp
// alike. Used by the looped kernel; the resident kernel's one-reduction try with
// it (v3, Chan merges in every warp) ran at half the speed of two plain sums on
// the H100.
struct MergeOps {
  __device__ __forceinline__ Stats operator()(const Stats& a, const Stats& b) const {
    return merge(a, b);
  }
  // warp_merge leaves the result in lane 0; every lane needs it.
  __device__ __forceinline__ static Stats warp(Stats s) {
    s = warp_merge(s);
    return {__shfl_sync(0xffffffffu, s.n, 0), __shfl_sync(0xffffffffu, s.mean, 0),
            __shfl_sync(0xffffffffu, s.m2, 0)};
  }
};
using RowStats = cuda::RowReduce<Stats, MergeOps>;

// The shift of a row's one-pass statistics: the mean of its first elements (one
// 16-byte load, the same address in every thread: a broadcast). With d = x - shift,
// var = E[d^2] - E[d]^2 loses about eps * (1 + E[d]^2 / var) relatively, so a shift
// within a few deviations of the mean keeps the f32 variance as good as two passes
// (and unlike E[x^2] - E[x]^2 it does not depend on |mean|). Rows where
// E[d]^2 > kShiftTrust * var take a second, centred pass: at 64 the H100 missed
// the f32 tolerance (5e-5) on rows with outliers, the summation's log(n) growth
// multiplying the 65 eps; at 4 a shift from the mean of 8 normal values is
// trusted unless 5.7 of its deviations off (never, in practice).
inline constexpr float kShiftTrust = 4.f;

template <typename T, int VEC>
__device__ __forceinline__ float row_shift(const T* __restrict__ row, int n) {
  if (VEC > 1 && n >= VEC) {
    const Vec<T, VEC> v = load_vec<T, VEC>(row);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < VEC; ++j) s += to_f(v.v[j]);
    return s * (1.0f / VEC);
  }
  return to_f(row[0]);
}

// The end of a row: y = (x - mean) * rstd * w + b for the ITEMS vectors this thread
// holds (at(k), columns s.col(k) < n: from registers or from a staged slice; w_at(k) and
// b_at(k) the weight's and bias's vectors there: loaded, or held for a walk's rows), and
// the row's statistics where `lead` (one thread of the row).
template <typename T, int VEC, int ITEMS, bool FULL = false, typename At, typename WAt,
          typename BAt>
__device__ __forceinline__ void store_row(At at, RowSlice s, WAt w_at, BAt b_at,
                                          T* __restrict__ y, float* __restrict__ mean_out,
                                          float* __restrict__ rstd_out, int64_t row, int n,
                                          float mean, float rstd, bool lead) {
  if (lead) {
    if (mean_out) mean_out[row] = mean;
    if (rstd_out) rstd_out[row] = rstd;
  }
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = s.col(k);
    if (FULL || col < n) {
      const Vec<T, VEC> v = at(k);
      const Vec<T, VEC> wv = w_at(k);
      const Vec<T, VEC> bv = b_at(k);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        out.v[j] = from_f<T>((to_f(v.v[j]) - mean) * rstd * to_f(wv.v[j]) + to_f(bv.v[j]));
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// A row of one CTA or cluster (forward_cta, forward_walk): the mean, then the centred
// squares (one reduction each, parities 0 and 1), then store_row. at(k): the thread's
// k-th vector; between(pass): called after pass 0's and pass 1's loop, before its
// reduction (forward_cta: opaque on the row it holds, so that nothing derived from it
// stays live across a reduction; forward_walk: at pass 1 every thread is past pass 0's
// reduction barrier).
template <typename T, int VEC, int ITEMS, bool FULL = false, typename Reducer, typename At,
          typename Between, typename WAt, typename BAt>
__device__ __forceinline__ void centred_row(Reducer& reducer, At at, Between between, RowSlice c,
                                            WAt w_at, BAt b_at, T* __restrict__ y,
                                            float* __restrict__ mean_out,
                                            float* __restrict__ rstd_out, int64_t row, int n,
                                            float inv_n, float eps, bool lead) {
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (FULL || c.col(k) < n) {
      const Vec<T, VEC> v = at(k);
#pragma unroll
      for (int j = 0; j < VEC; ++j) sum += to_f(v.v[j]);
    }
  }
  between(0);
  const float mean = reducer.template reduce<cuda::SumOp>(sum, 0) * inv_n;
  float sq = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (FULL || c.col(k) < n) {
      const Vec<T, VEC> v = at(k);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float d = to_f(v.v[j]) - mean;
        sq += d * d;
      }
    }
  }
  between(1);
  const float rstd = rsqrtf(reducer.template reduce<cuda::SumOp>(sq, 1) * inv_n + eps);
  store_row<T, VEC, ITEMS, FULL>(at, c, w_at, b_at, y, mean_out, rstd_out, row, n, mean, rstd, lead);
}

// Rows first, first + step, ... of which this CTA holds columns
// [rank * slice, rank * slice + slice); csize 1: one CTA a row. With kRowAhead (a persistent grid), the next
// row's loads are issued before the current row reduces (walk_rows), so they are
// in flight through its reductions and its stores; otherwise one cluster a row. SHIFTED (rows split over a cluster): one
// reduction of shifted sums a row, saving a cluster barrier (H100: 4096x65536
// bf16 0.583 -> 0.496 ms); one-CTA rows keep two plain reductions, which the
// shifted form's registers made slower there (32768x4096 0.221 -> 0.249,
// 8192x8192 0.104 -> 0.111: it spilled at the 3-blocks cap).
template <typename T, int VEC, int ITEMS, bool SHIFTED>
__global__ void __launch_bounds__(kMaxThreads, (kForwardMinBlocks<T, VEC, ITEMS>)) forward_resident(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ w, const T* __restrict__ b,
    T* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ rstd_out, int64_t rows,
    int n, int slice, int csize, float eps) {
  __shared__ float2 scratch2[2][32];
  __shared__ float2 slot2[2];
  __shared__ float scratch[2][32];
  __shared__ float slot[2];
  const int rank = cluster_rank(csize);
  const RowSlice s = cuda::row_slice<VEC>(rank, slice);
  cuda::RowSum2 row_sum2(scratch2, slot2, csize);
  RowSum row_sum(scratch, slot, csize);
  const float inv_n = __frcp_rn(static_cast<float>(n));
  using Row = cuda::RowVecs<T, VEC, ITEMS, 1>;
  const cuda::RowSources<T, 1> src{{x}, {x_stride}};
  auto load = [&](int64_t row, Row& r) { cuda::load_rows(r, src, row, s, n); };
  // This thread's sums of d = x - c and d^2 (c: a centre common to the row).
  auto centred_sums = [&](const Row& r, float c) {
    float s1 = 0.f, s2 = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (s.col(k) < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float d = to_f(r.v[0][k].v[j]) - c;
          s1 += d;
          s2 += d * d;
        }
      }
    }
    return make_float2(s1, s2);
  };
  auto body = [&](int64_t row, const Row& r, int) {
    float mean, var;
    if constexpr (SHIFTED) {
      // One reduction: sums about the shift give mean = shift + E[d] and
      // var = E[d^2] - E[d]^2 (row_shift's note bounds the rounding).
      const float shift = row_shift<T, VEC>(x + row * x_stride, n);
      const float2 t = row_sum2(centred_sums(r, shift));
      const float d = t.x * inv_n;
      mean = shift + d;
      var = fmaxf(t.y * inv_n - d * d, 0.f);
      if (d * d > kShiftTrust * var) {
        // The shift lies far from the mean (an outlier among the row's first
        // elements): sum again about the mean, which also corrects the mean
        // (corrected two-pass). The condition has the same bits in every thread of
        // the row, so all of them take this branch or none.
        const float2 u = row_sum2(centred_sums(r, mean));
        const float c = u.x * inv_n;
        mean += c;
        var = fmaxf(u.y * inv_n - c * c, 0.f);
      }
    } else {
      // Two reductions: the mean, then the centred squares.
      float sum = 0.f;
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        if (s.col(k) < n) {
#pragma unroll
          for (int j = 0; j < VEC; ++j) sum += to_f(r.v[0][k].v[j]);
        }
      }
      mean = row_sum(sum) * inv_n;
      float sq = 0.f;
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        if (s.col(k) < n) {
#pragma unroll
          for (int j = 0; j < VEC; ++j) {
            const float d = to_f(r.v[0][k].v[j]) - mean;
            sq += d * d;
          }
        }
      }
      var = row_sum(sq) * inv_n;
    }
    const float rstd = rsqrtf(var + eps);
    store_row<T, VEC, ITEMS>(
        [&](int k) { return r.v[0][k]; }, s, [&](int k) { return load_vec<T, VEC>(w + s.col(k)); },
        [&](int k) { return load_vec<T, VEC>(b + s.col(k)); }, y, mean_out, rstd_out, row, n,
        mean, rstd, rank == 0 && threadIdx.x == 0);
  };
  const int64_t first = blockIdx.x / csize, step = gridDim.x / csize;
  if constexpr (kRowAhead<VEC, ITEMS>) {
    cuda::walk_rows<Row>(first, rows, step, load, body);
  } else {
    for (int64_t row = first; row < rows; row += step) {
      Row r;
      load(row, r);
      body(row, r, 0);
    }
  }
  // Peers may still read this CTA's last DSMEM slot.
  cluster_exit(csize);
}

// One CTA a row (cta_row.cuh; rows over a cluster take forward_walk), for 16-byte
// rows: ITEMS vectors a thread at row_slice's columns; the mean, then the centred
// squares (two reductions, one barrier each). Block b is row row0 + b (no row loop:
// it costs registers). The loads keep their `col < n` predicates: unconditional ones
// (load_row_clamped) made ptxas spill <float, 4, 4> at 32 registers (run 16a:
// 16384x4096 f32 0.135 -> 0.148 ms). FULL: every thread's ITEMS vectors lie in the row
// (n == threads x ITEMS x VEC; kCtaFull), so nothing is tested.
template <typename T, int VEC, int ITEMS, bool FULL>
__global__ void __launch_bounds__(cuda::kCtaMaxThreads<ITEMS>) forward_cta(
    int64_t row0, const T* __restrict__ x, int64_t x_stride, const T* __restrict__ w,
    const T* __restrict__ b, T* __restrict__ y, float* __restrict__ mean_out,
    float* __restrict__ rstd_out, int n, int slice, int csize, float eps) {
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<false> reducer(shared, csize);
  const auto [rank, c, row] = cuda::cta_row_frame<false, VEC>(row0, slice, csize);
  const float inv_n = __frcp_rn(static_cast<float>(n));
  Vec<T, VEC> v[ITEMS];
  cuda::load_row<T, VEC, ITEMS, FULL>(v, x + row * x_stride, c, n);
  centred_row<T, VEC, ITEMS, FULL>(
      reducer, [&](int k) { return v[k]; },
      [&](int) {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) cuda::opaque(v[k]);
      },
      c, [&](int k) { return load_vec<T, VEC>(w + c.col(k)); },
      [&](int k) { return load_vec<T, VEC>(b + c.col(k)); }, y, mean_out, rstd_out, row, n,
      inv_n, eps, rank == 0 && threadIdx.x == 0);
}

// Rows split over a cluster (packed rows too long for one CTA: 65536 bf16 columns take
// 4 CTAs of 512 x 4 vectors), walked persistently: one wave of clusters, each a group
// taking a contiguous chunk of rows. Each CTA holds its slice of w and b in registers for
// all its rows and stages its slice of x through a TMA ring of `stages`, read three
// times (centred_row); a stage is refilled once every thread is past the next row's
// first reduction. Why: one cluster a row, staged (run 22a-22d), re-read w and b through
// L2 every row: at 4096x65536 bf16 2.2 GB of L2 traffic beside 1.05 GB of DRAM, 0.317-0.324
// ms (ncu, run 23a). The walk's experiment ran 0.281 there (row_variants norm_walk,
// 4 x 512 x 4, three stages; two stages 0.324); this kernel moved 1.63 GB through L2 but
// took 0.326 (runs 23b-23c) while its row loop was 882 SASS instructions against the
// experiment's 607: ClusterPush's fold over a runtime cluster size and the column tests
// (session 15). Without them: 694 instructions, 0.298 ms (85% of copy, runs 24a-24c).
// ptxas -v, sm_90: <bf16, 8, 4> 105 registers (one CTA an SM), <float, 4, 4> 64 (two); no
// spills. FULL (16-bit rows): every thread's ITEMS vectors lie in the row (n == csize x
// threads x ITEMS x VEC), so no column is tested (<bf16, 8, 4, true> 108 registers). f32
// keeps the tests: without them it took 78 registers (one CTA an SM), with them 64 (two),
// and capped at 64 it spilled.
template <typename T, int VEC, int ITEMS, bool FULL>
__global__ void __launch_bounds__(kWalkThreads) forward_walk(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ w, const T* __restrict__ b,
    T* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ rstd_out, int64_t rows,
    int n, int slice, int csize, int stages, float eps) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using V = Vec<T, VEC>;
  extern __shared__ __align__(128) unsigned char ring_smem[];
  __shared__ alignas(8) uint64_t ring_bars[cuda::kMaxRingStages];
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<true> reducer(shared, csize);
  const int rank = cluster_rank(csize);
  const RowSlice c = cuda::row_slice<VEC>(rank, slice);
  // This CTA's columns [begin, begin + cols), empty past the row's end.
  const int begin = min(rank * slice, n);
  const int cols = min(slice, n - begin);
  const cuda::RowChunk chunk = cuda::row_chunk(blockIdx.x / csize, gridDim.x / csize, rows);
  const cuda::RowSources<T, 1> src{{x + begin}, {x_stride}};
  cuda::StagedRows<T, 1> ring(ring_smem, ring_bars, stages, src, cols, chunk.first, chunk.last);
  V wv[ITEMS], bv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (FULL || c.col(k) < n) {
      wv[k] = load_vec<T, VEC>(w + c.col(k));
      bv[k] = load_vec<T, VEC>(b + c.col(k));
    }
  }
  const float inv_n = __frcp_rn(static_cast<float>(n));
#pragma unroll 1
  for (int64_t row = chunk.first; row < chunk.last; ++row) {
    ring.wait();
    const T* xs = ring.row(0) - begin;  // indexed by the row's column
    centred_row<T, VEC, ITEMS, FULL>(
        reducer, [&](int k) { return *reinterpret_cast<const V*>(xs + c.col(k)); },
        [&](int pass) {
          if (pass == 1) ring.release_previous(row - 1);
        },
        c, [&](int k) { return wv[k]; }, [&](int k) { return bv[k]; }, y, mean_out, rstd_out,
        row, n, inv_n, eps, rank == 0 && threadIdx.x == 0);
    ring.next();
  }
  reducer.finish();
#endif
}

// forward_walk over the clusters resident at once (at most one a row); *launched false,
// and nothing launched, where its shared memory or not even one cluster fits.
template <typename T>
Status launch_walk(const cuda::SplitShape& s, int64_t rows, cudaStream_t stream, bool* launched,
                   const T* x, int64_t x_stride, const T* w, const T* b, T* y, float* mean,
                   float* rstd, int n, float eps) {
  *launched = rows == 0;
  if (rows == 0) return Status::Ok();
  constexpr int kVec = 16 / sizeof(T);
  // cta_split's slice of s.threads x kPackedItems vectors in twice the threads.
  const int threads = s.threads * cuda::kPackedItems / kWalkItems;
  auto* kernel = &forward_walk<T, kVec, kWalkItems, false>;
  if constexpr (sizeof(T) < 4) {
    if (cuda::row_fills_threads(n, s.cluster, threads, kWalkItems, kVec))
      kernel = &forward_walk<T, kVec, kWalkItems, true>;
  }
  const void* fn = reinterpret_cast<const void*>(kernel);
  const int smem = cuda::StagedRows<T, 1>::smem_bytes(s.slice, kWalkStages);
  bool fits = false;
  XPU_RETURN_IF_ERROR(cuda::allow_dynamic_smem(fn, smem, &fits));
  if (!fits) return Status::Ok();
  int resident = 0;
  XPU_RETURN_IF_ERROR(cuda::resident_count(fn, threads, s.cluster, &resident, smem));
  if (resident <= 0) return Status::Ok();
  const int64_t groups = std::min<int64_t>(resident, rows);
  XPU_RETURN_IF_ERROR(cuda::cuda_status(
      cuda::launch_clustered_smem(kernel, static_cast<unsigned>(groups * s.cluster), threads,
                                  s.cluster, smem, stream, x, x_stride, w, b, y, mean, rstd, rows,
                                  n, s.slice, s.cluster, kWalkStages, eps),
      kOp, "forward launch"));
  *launched = true;
  return Status::Ok();
}

// Any row length: pass 1 gathers Welford statistics (each vector's own mean and
// squared deviations, merged into the thread's), pass 2 re-reads and writes y.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) forward_looped(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ w, const T* __restrict__ b,
    T* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ rstd_out, int64_t rows,
    int n, float eps) {
  __shared__ Stats scratch[2][32];
  __shared__ Stats slot[2];
  RowStats row_stats(scratch, slot, 1);
  const float inv_n = __frcp_rn(static_cast<float>(n));
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    Stats st{0.f, 0.f, 0.f};
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < VEC; ++j) s += to_f(v.v[j]);
      const float cm = s * (1.0f / VEC);  // VEC is a power of two: exact
      float c2 = 0.f;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float d = to_f(v.v[j]) - cm;
        c2 += d * d;
      }
      st = merge(st, Stats{static_cast<float>(VEC), cm, c2});
    }
    st = row_stats(st);
    const float mean = st.mean;
    const float rstd = rsqrtf(st.m2 * inv_n + eps);
    if (threadIdx.x == 0) {
      if (mean_out) mean_out[row] = mean;
      if (rstd_out) rstd_out[row] = rstd;
    }
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
      const Vec<T, VEC> bv = load_vec<T, VEC>(b + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        out.v[j] = from_f<T>((to_f(v.v[j]) - mean) * rstd * to_f(wv.v[j]) + to_f(bv.v[j]));
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// reference: scalar loads, a mean pass, a variance pass and an output pass.
template <typename T>
__global__ void __launch_bounds__(kMaxThreads) forward_reference(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ w, const T* __restrict__ b,
    T* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ rstd_out, int64_t rows,
    int n, float eps) {
  __shared__ float scratch[32];
  const float fn = static_cast<float>(n);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    float s = 0.f;
    for (int col = threadIdx.x; col < n; col += blockDim.x) s += to_f(xr[col]);
    const float mean = block_sum(s, scratch) / fn;
    float q = 0.f;
    for (int col = threadIdx.x; col < n; col += blockDim.x) {
      const float d = to_f(xr[col]) - mean;
      q += d * d;
    }
    const float rstd = 1.0f / sqrtf(block_sum(q, scratch) / fn + eps);
    if (threadIdx.x == 0) {
      if (mean_out) mean_out[row] = mean;
      if (rstd_out) rstd_out[row] = rstd;
    }
    for (int col = threadIdx.x; col < n; col += blockDim.x)
      y[row * n + col] = from_f<T>((to_f(xr[col]) - mean) * rstd * to_f(w[col]) + to_f(b[col]));
  }
}

}  // namespace

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.n, "elements"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.x.as<T>();
  const T* w = a.weight.as<T>();
  const T* b = a.bias.as<T>();
  T* y = a.y.as<T>();
  float* mean = a.mean.present() ? a.mean.as<float>() : nullptr;
  float* rstd = a.rstd.present() ? a.rstd.as<float>() : nullptr;
  const int n = static_cast<int>(p.n);
  const dim3 grid(static_cast<unsigned>(std::min(p.rows, kMaxRowBlocks)));
  if (ctx.policy == Policy::kReference) {
    forward_reference<T><<<grid, kReferenceThreads, 0, stream>>>(x, p.x_stride, w, b, y, mean,
                                                                 rstd, p.rows, n, a.eps);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const int vec = cuda::vector_width<T>(p.n, {{x, p.x_stride}, {w, 0}, {b, 0}, {y, p.n}});

  int max_cluster = 1;
  XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
  // 16-byte rows that one CTA holds (at most 4 vectors a thread in up to 1024
  // threads, or a packed row of 256 x 8): forward_cta; else a cluster of packed CTAs,
  // walked persistently, x staged through shared memory by TMA (sm_90; forward_walk).
  if (vec == kVec) {
    const cuda::RowShape c =
        cuda::cta_shape(p.n, vec, kForwardElems, cuda::kPreferItems, cuda::kWideThreads);
    const cuda::SplitShape s = c.items > 0 ? cuda::SplitShape{1, c.items, c.threads, 0}
                                           : cuda::cta_split(p.n, vec, max_cluster);
    void (*cta)(int64_t, const T*, int64_t, const T*, const T*, T*, float*, float*, int, int, int,
                float) = nullptr;
    bool launched = false;
    if (s.cluster > 1) {
      XPU_RETURN_IF_ERROR(launch_walk<T>(s, p.rows, stream, &launched, x, p.x_stride, w, b, y,
                                         mean, rstd, n, a.eps));
    } else if (s.cluster == 1) {
      const bool full = cuda::row_fills_threads(p.n, 1, s.threads, s.items, kVec);
      cuda::with_vec_items<kVec, kVec * cuda::kPackedItems, 16>(vec, s.items, [&]<int V, int I>() {
        if constexpr (V == kVec) {
          if constexpr (kCtaFull<T, I>)
            cta = full ? &forward_cta<T, V, I, true> : &forward_cta<T, V, I, false>;
          else
            cta = &forward_cta<T, V, I, false>;
        }
      });
    }
    if (cta)
      XPU_RETURN_IF_ERROR(cuda::launch_rows(cta, p.rows, s.threads, s.cluster, stream, kOp,
                                            &launched, x, p.x_stride, w, b, y, mean, rstd, n,
                                            s.slice, s.cluster, a.eps));
    if (launched) return Status::Ok();
  }

  using Kernel = void (*)(const T*, int64_t, const T*, const T*, T*, float*, float*, int64_t, int,
                          int, int, float);
  const int max_elems = vec == 1 ? kForwardScalarElems<T> : kForwardElems;
  const cuda::SplitShape s =
      cuda::split_shape(p.n, vec, max_elems, kMaxThreads, max_cluster, cuda::kPreferItems);
  Kernel kernel = nullptr;
  if (s.cluster > 0) {
    cuda::with_vec_items<kVec, kForwardElems>(vec, s.items, [&]<int V, int I>() {
      // Scalar shapes stop at kForwardScalarElems (split_shape above never asks for more).
      if constexpr (V > 1 || I <= kForwardScalarElems<T>)
        kernel = s.cluster > 1 ? &forward_resident<T, V, I, true>
                               : &forward_resident<T, V, I, false>;
    });
  }
  if (kernel) {
    bool launched = false;
    const bool ahead = vec > 1 && s.items == 1;  // kRowAhead of the kernel picked
    XPU_RETURN_IF_ERROR(cuda::launch_split_rows(kernel, s, p.rows, ahead, stream, kOp, "forward launch",
                                                &launched, x, p.x_stride, w, b, y, mean, rstd,
                                                p.rows, n, s.slice, s.cluster, a.eps));
    if (launched) return Status::Ok();
  }

  const int threads = cuda::looped_threads(p.n, vec);
  cuda::with_vec_items<kVec, 16>(vec, 1, [&]<int V, int>() {
    forward_looped<T, V><<<grid, threads, 0, stream>>>(x, p.x_stride, w, b, y, mean, rstd, p.rows,
                                                       n, a.eps);
  });
  return cuda::launch_status(kOp);
}

template Status forward<float>(const ForwardProblem&, const ExecContext&);
template Status forward<__half>(const ForwardProblem&, const ExecContext&);
template Status forward<__nv_bfloat16>(const ForwardProblem&, const ExecContext&);

}  // namespace xpu::ops::layer_norm_detail::gpu
