// rms_norm backward on CUDA.
// fast / deterministic (fused): G row groups, each a CTA or a cluster of 2-8 CTAs
//   that split a row's columns, walking a contiguous chunk of rows. 16-byte rows:
//   fused_norm_backward_staged (kernels/common/norm_backward.cuh, shared with
//   layer_norm), every CTA staging its slice of x and dy through a TMA ring and keeping
//   an f32 dweight accumulator in registers; scalar rows: backward_resident, here, x and
//   dy in registers with the next row loaded while the current one reduces. The row's
//   sums (x^2 for rstd, which is recomputed here rather than saved by the forward, and
//   g * x) come from one float2 reduction over the CTA, then the cluster in rank order
//   (DSMEM). One read of x and dy gives both dx
//   and the dweight partials; G x N partials are then summed in group order by
//   param_reduce. No atomics, so `fast` is also deterministic.
// Longer rows (past 8 CTAs' worth, 65536 elements when 16-byte aligned), devices
//   without clusters, and reference: a dx kernel (row in registers, or looped)
//   plus a column-wise dweight-partials kernel that re-reads x and dy; the dx kernel
//   writes each row's rstd into the workspace (after the partials) for it, in chunks
//   of kRstdChunkRows rows so that the workspace stays bounded in the row count.
#include "kernels/common/norm_backward.cuh"
#include "kernels/rms_norm/cuda_common.cuh"

namespace xpu::ops::rms_norm_detail::gpu {
namespace {

using cuda::block_sum2;
using cuda::cluster_exit;
using cuda::cluster_rank;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

// 32-bit registers one thread needs to hold its part of one row of x (or dy).
template <typename T, int VEC, int ITEMS>
constexpr int kRowRegs = ITEMS * ((VEC * int(sizeof(T)) + 3) / 4);

// The row's rstd and mean(g * xhat) from its reduced sums (x^2, g * x).
__device__ __forceinline__ cuda::RowGrad rms_row_grad(float2 sums, float inv_n, float eps) {
  cuda::RowGrad st{0.f, 0.f, 0.f, 0.f};
  cuda::norm_row_means<false>(st, sums, inv_n, eps);
  return st;
}

// Rows group, group + groups, ... of which this CTA holds columns
// [rank * slice, rank * slice + slice). With ACC, also writes this group's
// dweight partial (row `group` of `partial`) for those columns; without, each
// row's rstd into rstd_out (for dweight_partials).
template <typename T, int VEC, int ITEMS, bool DH, bool ACC>
__global__ void __launch_bounds__(kMaxThreads, (ACC && VEC * ITEMS <= 4) ? 2 : 1)
    backward_resident(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const T* __restrict__ dh, int64_t dh_stride, T* __restrict__ dx,
    float* __restrict__ partial, float* __restrict__ rstd_out, int64_t rows, int n, int slice,
    int csize, float eps) {
  // A group walks many rows: load the next row while this one reduces and
  // stores. Only where the second copy of x and dy fits the 128 registers of a
  // 512-thread block without spilling (ptxas: at 16 registers a tensor, 64
  // bytes of f32 spill). At <= 4 elements a thread the block is also held to
  // 64 registers a thread (8 bf16 elements spill 44 bytes there) (launch bounds above) so that two blocks share an SM
  // and two rows are in flight per SM.
  constexpr bool kPrefetch = ACC && kRowRegs<T, VEC, ITEMS> <= 8;
  __shared__ float2 scratch[32];
  __shared__ float2 slot[2];
  const int rank = cluster_rank(csize);
  const int first = rank * slice + static_cast<int>(threadIdx.x) * VEC;
  const int stride = static_cast<int>(blockDim.x) * VEC;
  const int64_t group = blockIdx.x / csize, groups = gridDim.x / csize;
  const float inv_n = __frcp_rn(static_cast<float>(n));

  float acc[ITEMS][VEC];
  Vec<T, VEC> wv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = first + k * stride;
    if (col < n) wv[k] = load_vec<T, VEC>(w + col);
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[k][j] = 0.f;
  }
  auto load_row = [&](int64_t row, Vec<T, VEC>* xs, Vec<T, VEC>* gs) {
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = first + k * stride;
      if (col < n) {
        xs[k] = load_vec<T, VEC>(x + row * x_stride + col);
        gs[k] = load_vec<T, VEC>(dy + row * dy_stride + col);
      }
    }
  };

  Vec<T, VEC> xv[ITEMS], gv[ITEMS];
  int64_t row = group;
  if (kPrefetch && row < rows) load_row(row, xv, gv);
  int parity = 0;
#pragma unroll 1
  for (; row < rows; row += groups, parity ^= 1) {
    if constexpr (!kPrefetch) load_row(row, xv, gv);
    const int64_t next = row + groups;
    const bool more = kPrefetch && next < rows;
    Vec<T, VEC> xn[ITEMS], gn[ITEMS];
    if (more) load_row(next, xn, gn);
    float ss = 0.f, sgx = 0.f;  // sum x^2, sum g * x
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (first + k * stride < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xf = to_f(xv[k].v[j]);
          ss += xf * xf;
          sgx += to_f(gv[k].v[j]) * to_f(wv[k].v[j]) * xf;
        }
      }
    }
    const float2 sums =
        cuda::cluster_reduce(block_sum2(ss, sgx, scratch), slot, parity, csize, cuda::Plus{});
    const cuda::RowGrad st = rms_row_grad(sums, inv_n, eps);
    if (!ACC && rstd_out && rank == 0 && threadIdx.x == 0) rstd_out[row] = st.rstd;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = first + k * stride;
      if (col < n) {
        if constexpr (ACC) {
#pragma unroll
          for (int j = 0; j < VEC; ++j)
            acc[k][j] += to_f(gv[k].v[j]) * cuda::norm_xhat<false>(to_f(xv[k].v[j]), st);
        }
        Vec<T, VEC> extra;
        if constexpr (DH) extra = load_vec<T, VEC>(dh + row * dh_stride + col);
        store_vec<T, VEC>(dx + row * n + col,
                          cuda::norm_dx_vec<false, DH>(
                              xv[k], gv[k], [&](int j) { return to_f(wv[k].v[j]); }, extra, st));
      }
    }
    if (more) {
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        xv[k] = xn[k];
        gv[k] = gn[k];
      }
    }
  }
  cluster_exit(csize);
  if constexpr (ACC) {
    const bool wide = cuda::partials_wide<VEC>(partial, n, 0);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = first + k * stride;
      if (col < n) cuda::store_partial<VEC>(partial + group * n + col, acc[k], wide);
    }
  }
}

// dx for any row length: the row is read twice from memory. Writes each row's
// rstd into rstd_out (for dweight_partials).
template <typename T, int VEC, bool DH>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const T* __restrict__ dh, int64_t dh_stride, T* __restrict__ dx,
    float* __restrict__ rstd_out, int n, float eps) {
  __shared__ float2 scratch[32];
  const int64_t row = blockIdx.x;
  float ss = 0.f, sgx = 0.f;  // sum x^2, sum g * x
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    const Vec<T, VEC> xv = load_vec<T, VEC>(x + row * x_stride + col);
    const Vec<T, VEC> gv = load_vec<T, VEC>(dy + row * dy_stride + col);
    const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float xf = to_f(xv.v[j]);
      ss += xf * xf;
      sgx += to_f(gv.v[j]) * to_f(wv.v[j]) * xf;
    }
  }
  const cuda::RowGrad st =
      rms_row_grad(block_sum2(ss, sgx, scratch), __frcp_rn(static_cast<float>(n)), eps);
  const float r = st.rstd, dot = st.mgx;
  if (threadIdx.x == 0) rstd_out[row] = r;
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    const Vec<T, VEC> xv = load_vec<T, VEC>(x + row * x_stride + col);
    const Vec<T, VEC> gv = load_vec<T, VEC>(dy + row * dy_stride + col);
    const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
    Vec<T, VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      float v = r * (to_f(gv.v[j]) * to_f(wv.v[j]) - to_f(xv.v[j]) * r * dot);
      if constexpr (DH) v += to_f(dh[row * dh_stride + col + j]);
      out.v[j] = from_f<T>(v);
    }
    store_vec<T, VEC>(dx + row * n + col, out);
  }
}

// dweight partials column by column: group g sums rows g, g+G, g+2G, ... of a chunk,
// added to its partial of the chunks before (`first`: the first chunk).
template <typename T>
__global__ void dweight_partials(const T* __restrict__ dy, int64_t dy_stride,
                                 const T* __restrict__ x, int64_t x_stride,
                                 const float* __restrict__ rstd, float* __restrict__ partial,
                                 int64_t rows, int n, bool first) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  float acc = first ? 0.f : partial[int64_t(blockIdx.y) * n + col];
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y)
    acc += to_f(dy[row * dy_stride + col]) * to_f(x[row * x_stride + col]) * rstd[row];
  partial[int64_t(blockIdx.y) * n + col] = acc;
}

}  // namespace

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* x = a.x.as<T>();
  const T* w = a.weight.as<T>();
  const T* dh = a.dh.present() ? a.dh.as<T>() : nullptr;
  float* partial = a.workspace.as<float>();
  // The unfused path's row rstd, written by its dx kernel for dweight_partials.
  float* rstd = a.workspace.as<float>() + rms_norm_backward_rstd_offset(p.row_groups, p.n);
  T* dx = a.dx.as<T>();
  const int n = static_cast<int>(p.n);
  const int64_t dh_stride = dh ? p.dh_stride : 0;
  constexpr int kVec = 16 / sizeof(T);
  const bool reference = ctx.policy == Policy::kReference;
  const int vec = reference ? 1
                            : cuda::vector_width<T>(p.n, {{dy, p.dy_stride}, {x, p.x_stride},
                                                          {w, 0}, {dx, p.n}, {dh, p.dh_stride}});
  auto reduce = [&](int64_t groups) {
    return cuda::launch_param_reduce<T>(partial, 0, groups, n, a.dweight.as<T>(), nullptr, stream,
                                        kOp);
  };
  if (p.rows == 0) return reduce(0);  // no rows: dweight is zero

  if (!reference) {
    // 16-byte rows: the shared fused kernel (kernels/common/norm_backward.cuh).
    int64_t groups = 0;
    const cuda::NormBackwardArgs<T> args{dy, p.dy_stride, x, p.x_stride, w, nullptr, nullptr, dh,
                                         dh_stride, dx, partial, 0, p.rows, n, a.eps, 0, 0};
    XPU_RETURN_IF_ERROR(
        cuda::launch_fused_norm_backward<false>(args, vec, p.row_groups, stream, kOp, &groups));
    if (groups > 0) return reduce(groups);
  }
  using Kernel = void (*)(const T*, int64_t, const T*, int64_t, const T*, const T*, int64_t, T*,
                          float*, float*, int64_t, int, int, int, float);
  if (!reference && vec == 1) {
    // Scalar rows: x and dy in registers, the next row loaded ahead where it fits.
    int max_cluster = 1;
    XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
    // Scalar elements take a register each: 16 of them spill (ptxas).
    const cuda::SplitShape s =
        cuda::split_shape(p.n, vec, kFusedElems / 2, kMaxThreads, max_cluster);
    Kernel kernel = nullptr;
    if (s.cluster > 0) {
      cuda::with_vec_items<kVec, kFusedElems / 2>(vec, s.items, [&]<int V, int I>() {
        if constexpr (V == 1)
          kernel = dh ? &backward_resident<T, V, I, true, true>
                      : &backward_resident<T, V, I, false, true>;
      });
    }
    int resident = 0;
    if (kernel)
      XPU_RETURN_IF_ERROR(cuda::resident_count(reinterpret_cast<const void*>(kernel), s.threads,
                                               s.cluster, &resident));
    if (resident > 0) {
      // Persistent: at most the clusters resident at once (and the workspace's rows).
      const int64_t groups = std::min<int64_t>({p.row_groups, p.rows, resident});
      XPU_RETURN_IF_ERROR(cuda::cuda_status(
          cuda::launch_clustered(kernel, static_cast<unsigned>(groups * s.cluster), s.threads,
                                 s.cluster, stream, dy, p.dy_stride, x, p.x_stride, w, dh,
                                 dh_stride, dx, partial, nullptr, p.rows, n, s.slice, s.cluster,
                                 a.eps),
          kOp, "backward launch"));
      return reduce(groups);
    }
  }

  // Unfused, a chunk of rows at a time (its rstd in the workspace): dx one row per CTA,
  // then the chunk's dweight added to the partials of p.row_groups groups.
  const cuda::Shape s = reference ? cuda::Shape{0, 0}
                                  : cuda::resident_shape(p.n, vec, vec == 1 ? kUnfusedScalarElems
                                                                            : kUnfusedElems);
  const int threads = reference ? 256 : cuda::looped_threads(p.n, vec);
  for (int64_t r0 = 0; r0 < p.rows; r0 += kRstdChunkRows) {
    const int64_t rows = std::min<int64_t>(kRstdChunkRows, p.rows - r0);
    const T* cdy = dy + r0 * p.dy_stride;
    const T* cx = x + r0 * p.x_stride;
    const T* cdh = dh ? dh + r0 * dh_stride : nullptr;
    T* cdx = dx + r0 * p.n;
    if (s.items > 0) {
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, cuda::kMaxGrid));
      cuda::with_vec_items<kVec, kUnfusedElems>(vec, s.items, [&]<int V, int I>() {
        if constexpr (V > 1 || I <= kUnfusedScalarElems) {
          const Kernel kernel = dh ? &backward_resident<T, V, I, true, false>
                                   : &backward_resident<T, V, I, false, false>;
          kernel<<<grid, s.threads, 0, stream>>>(cdy, p.dy_stride, cx, p.x_stride, w, cdh,
                                                 dh_stride, cdx, nullptr, rstd, rows, n,
                                                 s.threads * s.items * V, 1, a.eps);
        }
      });
    } else {
      const dim3 grid(static_cast<unsigned>(rows));
      cuda::with_vec_items<kVec, 16>(vec, 1, [&]<int V, int>() {
        if (dh)
          backward_looped<T, V, true><<<grid, threads, 0, stream>>>(
              cdy, p.dy_stride, cx, p.x_stride, w, cdh, dh_stride, cdx, rstd, n, a.eps);
        else
          backward_looped<T, V, false><<<grid, threads, 0, stream>>>(
              cdy, p.dy_stride, cx, p.x_stride, w, nullptr, 0, cdx, rstd, n, a.eps);
      });
    }
    XPU_RETURN_IF_ERROR(cuda::launch_status(kOp));
    const dim3 pgrid((n + 255) / 256, static_cast<unsigned>(p.row_groups));
    dweight_partials<T><<<pgrid, 256, 0, stream>>>(cdy, p.dy_stride, cx, p.x_stride, rstd,
                                                   partial, rows, n, r0 == 0);
    XPU_RETURN_IF_ERROR(cuda::launch_status(kOp));
  }
  return reduce(p.row_groups);
}

template Status backward<float>(const BackwardProblem&, const ExecContext&);
template Status backward<__half>(const BackwardProblem&, const ExecContext&);
template Status backward<__nv_bfloat16>(const BackwardProblem&, const ExecContext&);

}  // namespace xpu::ops::rms_norm_detail::gpu
