// The fused backward of the row norms, shared by rms_norm and layer_norm: one
// read of x and dy gives dx and each row group's weight (and bias) gradient
// partials; a fixed-order column reduction then sums the groups' partials.
//   rms_norm   (CENTERED = false): xhat = x * r,          dx = r * (g - xhat * mean(g * xhat)) (+ dh)
//   layer_norm (CENTERED = true):  xhat = (x - mean) * r, dx = r * (g - mean(g) - xhat * mean(g * xhat))
// with g = dy * w, r = rstd; dweight = sum over rows of dy * xhat, dbias = sum of dy.
// Device: norm_dx_vec (dx of one vector, also used by rms_norm's scalar-row
// kernels), fused_norm_backward, param_reduce. Host: launch_fused_norm_backward,
// launch_param_reduce.
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

namespace xpu::cuda {

// Elements a thread of the fused kernel holds per row (x and dy, plus the f32
// accumulators): 16 compiles without spills (ptxas -v, sm_90).
inline constexpr int kNormFusedElems = 16;

// What dx of one row needs: the row's mean (layer_norm only), rstd, and the
// row means of g and of g * xhat.
struct RowGrad {
  float mean, rstd, mg, mgx;
};

template <bool CENTERED>
__device__ __forceinline__ float norm_xhat(float x, const RowGrad& s) {
  if constexpr (CENTERED) return (x - s.mean) * s.rstd;
  return x * s.rstd;
}

// dx for one vector of a row (+ dh, rms_norm's residual-branch gradient, with DH).
template <bool CENTERED, bool DH, typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> norm_dx_vec(const Vec<T, VEC>& x, const Vec<T, VEC>& dy,
                                                   const Vec<T, VEC>& w, const Vec<T, VEC>& dh,
                                                   const RowGrad& s) {
  Vec<T, VEC> out;
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    const float xhat = norm_xhat<CENTERED>(to_f(x.v[j]), s);
    const float g = to_f(dy.v[j]) * to_f(w.v[j]);
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
  const float* rstd;
  const T* dh;  // rms_norm's residual-branch gradient, or null
  int64_t dh_stride;
  T* dx;  // dense rows of n
  // Group g's dweight partial at partial[g * n ...], its dbias partial (layer_norm)
  // at partial[bias_offset + g * n ...].
  float* partial;
  int64_t bias_offset;
  int64_t rows;
  int n;
  int slice, csize;  // set by launch_fused_norm_backward: a CTA's columns, CTAs a row
};

// Row groups an SM's worth of the fused backward (the grid is kNormGroupsPerSm
// CTAs an SM, whatever is resident at once). H200 run 13 (rms_norm 32768x4096
// bf16, benchmarks/row_variants.py): 264 groups of 256 x 2 0.209 ms, 512 0.213-0.222,
// 1056 0.217-0.220, 4224 0.238; run 12's persistent ring 0.262.
inline constexpr int kNormGroupsPerSm = 2;
// Vectors a thread of the fused backward holds by preference (256 x 2 at 4096 bf16
// columns: 0.209 ms against 0.213 at 128 x 4 and 0.218 at 512 x 1, run 13).
inline constexpr int kNormItems = 2;

// Fused backward for 16-byte-aligned rows: G row groups, each a cluster of
// `csize` CTAs splitting a row's columns; group g walks a contiguous chunk of
// rows, the next row's x and dy (and dh) loaded into registers before the current
// one reduces (walk_rows); dh (rms_norm's residual branch) is loaded where it is
// added. Registers hold both rows and the f32 accumulators for the CTA's columns
// (<= kNormFusedElems elements a thread, kNormItems vectors where the row has work
// for them: ptxas -v, sm_90, spilled 72-212 bytes at four f32 vectors or with dh
// held ahead, none at two without).
// CLUSTER (rows split over a cluster): the row sums are pushed to the peers
// (ClusterPush) instead of cluster_reduce's barrier round trips (H200 run 16d,
// rms_norm 4096x65536 bf16 fwd+bwd 1.149 -> 0.999 ms); one-CTA rows take RowSum.
template <typename T, int ITEMS, bool DH, bool CENTERED, bool CLUSTER>
__global__ void __launch_bounds__(kMaxRowThreads, 1)
    fused_norm_backward(const NormBackwardArgs<T> a) {
  constexpr int VEC = 16 / sizeof(T);
  constexpr int NT = 2;
  using V = Vec<T, VEC>;
  using Row = RowVecs<T, VEC, ITEMS, NT>;
  // One barrier a row (RowReduce alternates two buffers), as in run 13's experiment
  // kernel; block_sum and block_sum2 take two.
  __shared__ float scratch[2][32], slot[2];     // one row sum (rms_norm)
  __shared__ float2 scratch2[2][32], slot2[2];  // two row sums (layer_norm)
  RowSum row_sum(scratch, slot, a.csize);
  RowSum2 row_sum2(scratch2, slot2, a.csize);
  using Sums = std::conditional_t<CENTERED, float2, float>;
  __shared__ RowReduceShared<Sums> pushed;
  RowReducer<CLUSTER, Sums> reducer(pushed, a.csize);
  // RowReducer (CLUSTER: pushed to the peers), or RowSum's block and cluster_reduce.
  auto sums = [&](Sums v, int parity) {
    if constexpr (CLUSTER) {
      return reducer.template reduce<SumOp>(v, parity);
    } else if constexpr (CENTERED) {
      return row_sum2(v);
    } else {
      return row_sum(v);
    }
  };
  const int rank = cluster_rank(a.csize);
  const RowSlice sl = row_slice<VEC>(rank, a.slice);
  const int64_t group = blockIdx.x / a.csize, groups = gridDim.x / a.csize;
  const int64_t per = (a.rows + groups - 1) / groups;
  const int64_t first = group * per, last = std::min<int64_t>(a.rows, first + per);
  const float inv_n = __frcp_rn(static_cast<float>(a.n));
  RowSources<T, NT> src;
  src.ptr[0] = a.x;
  src.stride[0] = a.x_stride;
  src.ptr[1] = a.dy;
  src.stride[1] = a.dy_stride;

  float accw[ITEMS][VEC], accb[ITEMS][VEC];
  V wv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (sl.col(k) < a.n) wv[k] = load_vec<T, VEC>(a.w + sl.col(k));
#pragma unroll
    for (int j = 0; j < VEC; ++j) accw[k][j] = accb[k][j] = 0.f;
  }
  // The row's statistics are loaded two rows ahead (plain loads). One row ahead
  // was 2% slower for layer_norm at 32768x4096 bf16 on the H100.
  auto stats = [&](int64_t row) {
    RowGrad st{0.f, 0.f, 0.f, 0.f};
    if (row < last) {
      st.rstd = a.rstd[row];
      if constexpr (CENTERED) st.mean = a.mean[row];
    }
    return st;
  };
  RowGrad next = stats(first), after = stats(first + 1);
  walk_rows<Row>(first, last, 1, [&](int64_t row, Row& r) { load_rows(r, src, row, sl, a.n); },
                 [&](int64_t row, const Row& r, int parity) {
    RowGrad st = next;
    next = after;
    after = stats(row + 2);
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (sl.col(k) < a.n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xhat = norm_xhat<CENTERED>(to_f(r.v[0][k].v[j]), st);
          const float gy = to_f(r.v[1][k].v[j]), g = gy * to_f(wv[k].v[j]);
          sgx += g * xhat;
          accw[k][j] += gy * xhat;
          if constexpr (CENTERED) {
            sg += g;
            accb[k][j] += gy;
          }
        }
      }
    }
    if constexpr (CENTERED) {
      const float2 s = sums(make_float2(sg, sgx), parity);
      st.mg = s.x * inv_n;
      st.mgx = s.y * inv_n;
    } else {
      st.mgx = sums(sgx, parity) * inv_n;
    }
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = sl.col(k);
      if (col < a.n) {
        V extra;
        if constexpr (DH) extra = load_vec<T, VEC>(a.dh + row * a.dh_stride + col);
        store_vec<T, VEC>(a.dx + row * a.n + col,
                          norm_dx_vec<CENTERED, DH>(r.v[0][k], r.v[1][k], wv[k], extra, st));
      }
    }
  });
  if constexpr (CLUSTER)
    reducer.finish();
  else
    cluster_exit(a.csize);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = sl.col(k);
    if (col < a.n) {
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        a.partial[group * a.n + col + j] = accw[k][j];
        if constexpr (CENTERED) a.partial[a.bias_offset + group * a.n + col + j] = accb[k][j];
      }
    }
  }
}

// out[c] = sum over groups of partial[g * n + c], in a fixed order: lane y of a
// block sums groups y, y + kLanes, ... in order, then the lanes' sums are added in
// y order. kLanes-way parallel over groups so that hundreds of partial rows
// stream at full bandwidth instead of one dependent chain per column.
// blockIdx.y picks the parameter: 0 -> dweight, 1 -> dbias (partials + bias_offset).
inline constexpr int kReduceCols = 32, kReduceLanes = 16;

template <typename T>
__global__ void __launch_bounds__(kReduceCols * kReduceLanes)
    param_reduce(const float* __restrict__ partial, int64_t bias_offset, int64_t groups, int n,
                 T* __restrict__ dw, T* __restrict__ db) {
  __shared__ float lane_sum[kReduceLanes][kReduceCols + 1];
  const float* src = blockIdx.y == 0 ? partial : partial + bias_offset;
  T* out = blockIdx.y == 0 ? dw : db;
  const int col = blockIdx.x * kReduceCols + threadIdx.x;
  float acc = 0.f;
  if (col < n) {
#pragma unroll 4
    for (int64_t g = threadIdx.y; g < groups; g += kReduceLanes) acc += src[g * n + col];
  }
  lane_sum[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    float s = 0.f;
#pragma unroll
    for (int y = 0; y < kReduceLanes; ++y) s += lane_sum[y][threadIdx.x];
    out[col] = from_f<T>(s);
  }
}

// ---- host ----------------------------------------------------------------------------------

// dweight (and dbias when db is not null) from `groups` rows of partials.
template <typename T>
Status launch_param_reduce(const float* partial, int64_t bias_offset, int64_t groups, int n,
                           T* dw, T* db, cudaStream_t stream, const char* op) {
  const dim3 grid(static_cast<unsigned>((n + kReduceCols - 1) / kReduceCols), db ? 2 : 1);
  param_reduce<T><<<grid, dim3(kReduceCols, kReduceLanes), 0, stream>>>(partial, bias_offset,
                                                                        groups, n, dw, db);
  return launch_status(op);
}

// Launches fused_norm_backward when the rows take 16-byte vectors (vec > 1) and a
// split of at most the device's cluster size fits kNormFusedElems a thread
// (kNormItems vectors where the row has work for them). *groups: the row groups
// launched, at most row_groups (the workspace's partial rows); 0 when nothing was
// launched and the caller takes its other path.
template <bool CENTERED, typename T>
Status launch_fused_norm_backward(NormBackwardArgs<T> a, int vec, int64_t row_groups,
                                  cudaStream_t stream, const char* op, int64_t* groups) {
  *groups = 0;
  constexpr int kVec = 16 / sizeof(T);
  if (vec != kVec || a.rows == 0) return Status::Ok();
  int max_cluster = 1, sms = 1;
  XPU_RETURN_IF_ERROR(max_cluster_size(&max_cluster));
  XPU_RETURN_IF_ERROR(multiprocessor_count(&sms));
  const SplitShape s =
      split_shape(a.n, vec, kNormFusedElems, kMaxRowThreads, max_cluster, kNormItems);
  if (s.cluster == 0) return Status::Ok();
  void (*kernel)(NormBackwardArgs<T>) = nullptr;
  const bool push = s.cluster > 1;
  with_vec_items<kVec, kNormFusedElems>(vec, s.items, [&]<int V, int I>() {
    if constexpr (V == kVec) {
      auto pick = [&]<bool DH>() {
        kernel = push ? &fused_norm_backward<T, I, DH, CENTERED, true>
                      : &fused_norm_backward<T, I, DH, CENTERED, false>;
      };
      if constexpr (!CENTERED) {
        if (a.dh) return pick.template operator()<true>();
      }
      pick.template operator()<false>();
    }
  });
  if (!kernel) return Status::Ok();
  int resident = 0;
  XPU_RETURN_IF_ERROR(
      resident_count(reinterpret_cast<const void*>(kernel), s.threads, s.cluster, &resident));
  if (resident <= 0) return Status::Ok();
  a.slice = s.slice;
  a.csize = s.cluster;
  // kNormGroupsPerSm an SM, rounded down to whole waves of the groups resident at
  // once: every group walks the same number of rows, so a partial last wave
  // (4096x65536, clusters of 8: 33 groups against 16 resident) would run alone.
  const int64_t target = std::max<int64_t>(1, int64_t{kNormGroupsPerSm} * sms / s.cluster);
  const int64_t g = std::min<int64_t>(
      {row_groups, a.rows, target < resident ? target : target / resident * resident});
  XPU_RETURN_IF_ERROR(cuda_status(
      launch_clustered(kernel, static_cast<unsigned>(g * s.cluster), s.threads, s.cluster, stream, a),
      op, "fused backward launch"));
  *groups = g;
  return Status::Ok();
}

}  // namespace xpu::cuda
