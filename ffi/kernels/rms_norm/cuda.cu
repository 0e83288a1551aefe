// rms_norm forward on CUDA, and the registration of both directions.
// fast / deterministic: the row is held in registers as 16-byte vectors: one
//   CTA a row of up to 1024 threads for 16-byte rows (forward_cta, cta_row.cuh;
//   65536 bf16 elements at 8 vectors a thread), else forward_resident. A row
//   too long for one CTA is split over a thread-block cluster of 2-8 CTAs, each
//   holding a slice; the slices' sums of squares meet through DSMEM in rank
//   order. One read of x, one write of y, no re-read, at any row length up to 8
//   CTAs' worth (bf16/f16/f32: 131072 elements when 16-byte aligned). One CTA (or
//   cluster) a row, as many as there are rows (no persistent grid: H200 run 13,
//   docs/kernels/rms_norm.md, measured the persistent walks, with or without a
//   shared-memory ring, 10-15% slower), kPreferItems vectors a thread.
// reference and longer rows: a plain loop that re-reads the row from memory.
// Backward: cuda_backward.cu.
#include "kernels/common/cta_row.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/rms_norm/cuda_common.cuh"
#include "kernels/rms_norm/forward_cta.cuh"

namespace xpu::ops::rms_norm_detail::gpu {
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

// Rows of which this CTA holds columns [rank * slice, rank * slice + slice);
// csize 1 is one CTA a row. One cluster a row (grid-stride past kMaxGrid), loading
// straight into registers; the residual is loaded where it is added (fewer
// registers live). No __launch_bounds__ block count: v2's register counts (an
// explicit 1 raised them by 8-16).
template <typename T, int VEC, int ITEMS, bool RES>
__global__ void __launch_bounds__(kMaxThreads) forward_resident(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ res, int64_t res_stride,
    const T* __restrict__ w, T* __restrict__ y, T* __restrict__ h, int64_t rows, int n,
    int slice, int csize, float eps) {
  __shared__ float scratch[2][32];
  __shared__ float slot[2];
  constexpr int NT = 1;
  using Row = cuda::RowVecs<T, VEC, ITEMS, NT>;
  const int rank = cluster_rank(csize);
  const RowSlice s = cuda::row_slice<VEC>(rank, slice);
  RowSum row_sum(scratch, slot, csize);
  cuda::RowSources<T, NT> src;
  src.ptr[0] = x;
  src.stride[0] = x_stride;
  auto body = [&](int64_t row, Row& r, int) {
    float sumsq = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = s.col(k);
      if (col < n) {
        if constexpr (RES) {
          const Vec<T, VEC> rv = load_vec<T, VEC>(res + row * res_stride + col);
#pragma unroll
          for (int j = 0; j < VEC; ++j)
            r.v[0][k].v[j] = from_f<T>(to_f(r.v[0][k].v[j]) + to_f(rv.v[j]));
          store_vec<T, VEC>(h + row * n + col, r.v[0][k]);
        }
#pragma unroll
        for (int j = 0; j < VEC; ++j) sumsq += to_f(r.v[0][k].v[j]) * to_f(r.v[0][k].v[j]);
      }
    }
    const float total = row_sum(sumsq);
    const float rstd = rsqrtf(total * __frcp_rn(static_cast<float>(n)) + eps);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = s.col(k);
      if (col < n) {
        const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j)
          out.v[j] = from_f<T>(to_f(r.v[0][k].v[j]) * rstd * to_f(wv.v[j]));
        store_vec<T, VEC>(y + row * n + col, out);
      }
    }
  };
  const int64_t first = blockIdx.x / csize, step = gridDim.x / csize;
  for (int64_t row = first; row < rows; row += step) {
    Row r;
    cuda::load_rows(r, src, row, s, n);
    body(row, r, 0);
  }
  cluster_exit(csize);
}

// Any row length: pass 1 sums squares (writing h), pass 2 re-reads and scales.
template <typename T, int VEC, bool RES>
__global__ void __launch_bounds__(kMaxThreads) forward_looped(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ res, int64_t res_stride,
    const T* __restrict__ w, T* __restrict__ y, T* __restrict__ h, int n, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* src = RES ? h + row * n : x + row * x_stride;
  float sumsq = 0.f;
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    Vec<T, VEC> v = load_vec<T, VEC>(x + row * x_stride + col);
    if constexpr (RES) {
      const Vec<T, VEC> r = load_vec<T, VEC>(res + row * res_stride + col);
#pragma unroll
      for (int j = 0; j < VEC; ++j) v.v[j] = from_f<T>(to_f(v.v[j]) + to_f(r.v[j]));
      store_vec<T, VEC>(h + row * n + col, v);
    }
#pragma unroll
    for (int j = 0; j < VEC; ++j) sumsq += to_f(v.v[j]) * to_f(v.v[j]);
  }
  // Each thread re-reads only the h elements it wrote itself, so no barrier is
  // needed between the passes beyond the one inside block_sum.
  const float rstd = rsqrtf(block_sum(sumsq, scratch) * __frcp_rn(static_cast<float>(n)) + eps);
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    const Vec<T, VEC> v = load_vec<T, VEC>(src + col);
    const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
    Vec<T, VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(to_f(v.v[j]) * rstd * to_f(wv.v[j]));
    store_vec<T, VEC>(y + row * n + col, out);
  }
}

}  // namespace

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.x.as<T>();
  const T* res = a.residual.present() ? a.residual.as<T>() : nullptr;
  T* h = a.residual.present() ? a.h.as<T>() : nullptr;
  const T* w = a.weight.as<T>();
  T* y = a.y.as<T>();
  constexpr int kVec = 16 / sizeof(T);
  const bool reference = ctx.policy == Policy::kReference;
  const int vec = reference ? 1
                            : cuda::vector_width<T>(p.n, {{x, p.x_stride}, {res, p.residual_stride},
                                                          {w, 0}, {y, p.n}, {h, p.n}});
  const int n = static_cast<int>(p.n);
  if (!reference) {
    int max_cluster = 1;
    XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
    using Kernel = void (*)(const T*, int64_t, const T*, int64_t, const T*, T*, T*, int64_t, int,
                            int, int, float);
    const int64_t res_stride = res ? p.residual_stride : 0;
    // 16-byte rows: forward_cta, one CTA or one cluster a row (forward_shape).
    if (vec == kVec) {
      const ForwardShape shape = forward_shape(p.n, vec, res != nullptr, max_cluster);
      const cuda::SplitShape s = shape.split;
      const ForwardCtaKernel<T> cta = forward_kernel<T>(shape, p.n, res != nullptr);
      bool launched = false;
      if (cta)
        XPU_RETURN_IF_ERROR(cuda::launch_rows(cta, p.rows, s.threads, s.cluster, stream, kOp,
                                              &launched, x, p.x_stride, res, res_stride, w, y,
                                              h, n, s.slice, s.cluster, a.eps));
      if (launched) return Status::Ok();
    }
    const cuda::SplitShape s = cuda::split_shape(p.n, vec, kForwardElems, kMaxThreads, max_cluster,
                                                 cuda::kPreferItems);
    Kernel kernel = nullptr;
    if (s.cluster > 0) {
      cuda::with_vec_items<kVec, kForwardElems>(vec, s.items, [&]<int V, int I>() {
        kernel = res ? &forward_resident<T, V, I, true> : &forward_resident<T, V, I, false>;
      });
    }
    if (kernel) {
      bool launched = false;
      XPU_RETURN_IF_ERROR(cuda::launch_split_rows(
          kernel, s, p.rows, /*persistent=*/false, stream, kOp, "forward launch", &launched, x,
          p.x_stride, res, res_stride, w, y, h, p.rows, n, s.slice, s.cluster, a.eps));
      if (launched) return Status::Ok();
    }
  }
  const dim3 grid(static_cast<unsigned>(p.rows));
  const int threads = reference ? 256 : cuda::looped_threads(p.n, vec);
  cuda::with_vec_items<kVec, 16>(vec, 1, [&]<int V, int>() {
    if (res)
      forward_looped<T, V, true><<<grid, threads, 0, stream>>>(x, p.x_stride, res,
                                                               p.residual_stride, w, y, h, n,
                                                               a.eps);
    else
      forward_looped<T, V, false><<<grid, threads, 0, stream>>>(x, p.x_stride, res, 0, w, y, h,
                                                                n, a.eps);
  });
  return cuda::launch_status(kOp);
}

template Status forward<float>(const ForwardProblem&, const ExecContext&);
template Status forward<__half>(const ForwardProblem&, const ExecContext&);
template Status forward<__nv_bfloat16>(const ForwardProblem&, const ExecContext&);

}  // namespace xpu::ops::rms_norm_detail::gpu

namespace xpu::ops::rms_norm_detail {

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, "rms_norm", DeviceKind::kCUDA,
      []<typename T>() { return std::pair{&gpu::forward<T>, &gpu::backward<T>}; });
}

}  // namespace xpu::ops::rms_norm_detail
