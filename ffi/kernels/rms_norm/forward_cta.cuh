// rms_norm's forward for rows that one CTA, or a cluster of CTAs, holds in registers
// (16-byte vectors). In a header so that benchmarks/native/row_variants.cu times the
// library's own kernel beside its experiments; launched by cuda.cu.
#pragma once

#include "kernels/common/cta_row.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/rms_norm/cuda_common.cuh"

namespace xpu::ops::rms_norm_detail::gpu {

// The forward's launch for 16-byte rows of n elements: one CTA a row where cta_shape fits
// (at most 4 vectors a thread in up to 1024 threads); a packed row without a residual that
// one CTA of up to kMaxCtaThreads x kPackedItems fills exactly (`wide`: the FULL form at
// 1024 threads, 64 registers); else a cluster of packed CTAs (cta_split; cluster 0: none).
// 4096x65536 bf16: the cluster of 4 x 256 x 8 0.2740 ms, one CTA of 1024 x 8 0.2626
// (row_variants, H200 run 26b); the tested one-CTA form had run 0.291 (run 22a), its y
// stores each waiting on their own load of w.
struct ForwardShape {
  cuda::SplitShape split;
  bool wide;
};
inline ForwardShape forward_shape(int64_t n, int vec, bool residual, int max_cluster) {
  constexpr int kI = cuda::kPackedItems;
  const cuda::RowShape c = cuda::cta_shape(n, vec, kForwardElems, cuda::kPreferItems,
                                           cuda::kWideThreads);
  if (c.items > 0) return {{1, c.items, c.threads, 0}, false};
  const cuda::RowShape w = cuda::resident_shape(n, vec, kI * vec, cuda::kMaxCtaThreads, kI, kI);
  if (!residual && w.items == kI && cuda::row_fills_threads(n, 1, w.threads, kI, vec))
    return {{1, kI, w.threads, 0}, true};
  return {cuda::cta_split(n, vec, max_cluster), false};
}

// One CTA a row, or with CLUSTER a cluster of csize CTAs a row (cta_row.cuh), for
// 16-byte rows: ITEMS vectors a thread at row_slice's columns, one reduction (one
// barrier; with CLUSTER, pushed to the peers: ClusterPush). Block b is row row0 +
// b / csize (no row loop: it costs registers). Packed rows (opaque) take 32
// registers at 64 bf16 elements. FULL: every thread's ITEMS vectors lie in the row
// (n == csize x threads x ITEMS x VEC), so nothing is tested; taken by the cluster rows
// and forward_shape's wide rows, without a residual. With the tests, y is written a vector at a time, each behind its
// own load of w (eight L2 round trips at the end of every CTA of 256 x 8); without them
// the loads of w go out together: 4096x65536 bf16 0.281 -> 0.274 ms (H200 run 25b). The
// one-CTA forms were not faster (8192x8192: <8, 4> at 32 registers with 4 bytes of
// spill, 0.0710 -> 0.0719 ms).
// MAX_THREADS: the launch bound (forward_shape's wide rows: kMaxCtaThreads).
template <typename T, int VEC, int ITEMS, bool RES, bool CLUSTER, bool FULL = false,
          int MAX_THREADS = cuda::kCtaMaxThreads<ITEMS>>
__global__ void __launch_bounds__(MAX_THREADS) forward_cta(
    int64_t row0, const T* __restrict__ x, int64_t x_stride, const T* __restrict__ res,
    int64_t res_stride, const T* __restrict__ w, T* __restrict__ y, T* __restrict__ h, int n,
    int slice, int csize, float eps) {
  using cuda::from_f;
  using cuda::load_vec;
  using cuda::to_f;
  using cuda::Vec;
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<CLUSTER> reducer(shared, csize);
  const auto [rank, c, row] = cuda::cta_row_frame<CLUSTER, VEC>(row0, slice, csize);
  Vec<T, VEC> v[ITEMS];
  cuda::load_row_clamped<T, VEC, ITEMS, FULL>(v, x + row * x_stride, c, n);
  float sumsq = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = c.col(k);
    if (FULL || col < n) {
      if constexpr (RES) {
        const Vec<T, VEC> rv = load_vec<T, VEC>(res + row * res_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) v[k].v[j] = from_f<T>(to_f(v[k].v[j]) + to_f(rv.v[j]));
        cuda::store_vec<T, VEC>(h + row * n + col, v[k]);
      }
#pragma unroll
      for (int j = 0; j < VEC; ++j) sumsq += to_f(v[k].v[j]) * to_f(v[k].v[j]);
    }
  }
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) cuda::opaque(v[k]);
  const float total = reducer.template reduce<cuda::SumOp>(sumsq, 0);
  const float rstd = rsqrtf(total * __frcp_rn(static_cast<float>(n)) + eps);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = c.col(k);
    if (FULL || col < n) {
      const Vec<T, VEC> wk = load_vec<T, VEC>(w + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(to_f(v[k].v[j]) * rstd * to_f(wk.v[j]));
      cuda::store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

template <typename T>
using ForwardCtaKernel = void (*)(int64_t, const T*, int64_t, const T*, int64_t, const T*, T*,
                                  T*, int, int, int, float);

// The forward_cta form a forward_shape launches (16-byte vectors of T; nullptr: none): the
// wide rows FULL at the 1024-thread bound, cluster rows FULL where they fill the threads
// and have no residual, one-CTA rows tested.
template <typename T>
ForwardCtaKernel<T> forward_kernel(const ForwardShape& shape, int64_t n, bool residual) {
  constexpr int kVec = 16 / sizeof(T), kI = cuda::kPackedItems;
  const cuda::SplitShape& s = shape.split;
  if (shape.wide) return &forward_cta<T, kVec, kI, false, false, true, cuda::kMaxCtaThreads>;
  if (s.cluster > 1) {
    if (residual) return &forward_cta<T, kVec, kI, true, true>;
    return cuda::row_fills_threads(n, s.cluster, s.threads, s.items, kVec)
               ? &forward_cta<T, kVec, kI, false, true, true>
               : &forward_cta<T, kVec, kI, false, true>;
  }
  ForwardCtaKernel<T> cta = nullptr;
  if (s.cluster == 1) {
    cuda::with_vec_items<kVec, kVec * kI, 16>(kVec, s.items, [&]<int V, int I>() {
      if constexpr (V == kVec)
        cta = residual ? &forward_cta<T, V, I, true, false> : &forward_cta<T, V, I, false, false>;
    });
  }
  return cta;
}

}  // namespace xpu::ops::rms_norm_detail::gpu
