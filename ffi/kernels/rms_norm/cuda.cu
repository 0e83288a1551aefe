// rms_norm on CUDA.
// fast / deterministic: one block per row, the row held in registers as 16-byte
//   vectors; the backward pass keeps per-block dweight partials in registers and
//   reduces them across blocks in a second, fixed-order kernel (no atomics, so
//   `fast` is also deterministic).
// reference and very long rows: plain loops that re-read the row from memory.
#include <algorithm>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/rms_norm/rms_norm_kernels.h"

namespace xpu::ops::rms_norm_detail {
namespace {

using cuda::block_sum;
using cuda::looped_threads;
using cuda::resident_shape;
using cuda::Shape;
using cuda::vector_width;
using cuda::with_vec_items;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr const char* kOp = "rms_norm";
// 512 threads a block leave each thread up to 128 registers, room for the
// row slices held in registers without spilling (launch.cuh shapes stay within it).
constexpr int kMaxThreads = cuda::kMaxRowThreads;
// Elements a thread holds in registers: forward (x), fused backward (x, dy and
// an f32 dweight accumulator), unfused backward (x, dy).
constexpr int kForwardElems = 64, kFusedElems = 16, kUnfusedElems = 32;

// ---- forward --------------------------------------------------------------------------------

template <typename T, int VEC, int ITEMS, bool RES>
__global__ void __launch_bounds__(kMaxThreads) forward_resident(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ res, int64_t res_stride,
    const T* __restrict__ w, T* __restrict__ y, T* __restrict__ h, float* __restrict__ rstd_out,
    int n, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  Vec<T, VEC> v[ITEMS];
  float sumsq = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = (k * blockDim.x + threadIdx.x) * VEC;
    if (col < n) {
      v[k] = load_vec<T, VEC>(x + row * x_stride + col);
      if constexpr (RES) {
        const Vec<T, VEC> r = load_vec<T, VEC>(res + row * res_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) v[k].v[j] = from_f<T>(to_f(v[k].v[j]) + to_f(r.v[j]));
        store_vec<T, VEC>(h + row * n + col, v[k]);
      }
#pragma unroll
      for (int j = 0; j < VEC; ++j) sumsq += to_f(v[k].v[j]) * to_f(v[k].v[j]);
    }
  }
  const float rstd = rsqrtf(block_sum(sumsq, scratch) * __frcp_rn(static_cast<float>(n)) + eps);
  if (rstd_out && threadIdx.x == 0) rstd_out[row] = rstd;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = (k * blockDim.x + threadIdx.x) * VEC;
    if (col < n) {
      const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(to_f(v[k].v[j]) * rstd * to_f(wv.v[j]));
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// Any row length: pass 1 sums squares (writing h), pass 2 re-reads and scales.
template <typename T, int VEC, bool RES>
__global__ void __launch_bounds__(kMaxThreads) forward_looped(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ res, int64_t res_stride,
    const T* __restrict__ w, T* __restrict__ y, T* __restrict__ h, float* __restrict__ rstd_out,
    int n, float eps) {
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
  if (rstd_out && threadIdx.x == 0) rstd_out[row] = rstd;
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    const Vec<T, VEC> v = load_vec<T, VEC>(src + col);
    const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
    Vec<T, VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(to_f(v.v[j]) * rstd * to_f(wv.v[j]));
    store_vec<T, VEC>(y + row * n + col, out);
  }
}

// ---- backward -------------------------------------------------------------------------------

// dx for one row; with ACC, also this block's dweight partial over its rows.
template <typename T, int VEC, int ITEMS, bool DH, bool ACC>
__global__ void __launch_bounds__(kMaxThreads) backward_resident(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const float* __restrict__ rstd, const T* __restrict__ dh,
    int64_t dh_stride, T* __restrict__ dx, float* __restrict__ partial, int64_t rows, int n) {
  __shared__ float scratch[32];
  float acc[ITEMS][VEC];
  Vec<T, VEC> wv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = (k * blockDim.x + threadIdx.x) * VEC;
    if (col < n) wv[k] = load_vec<T, VEC>(w + col);
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[k][j] = 0.f;
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float r = rstd[row];
    Vec<T, VEC> xv[ITEMS], gv[ITEMS];
    float dot = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
        xv[k] = load_vec<T, VEC>(x + row * x_stride + col);
        gv[k] = load_vec<T, VEC>(dy + row * dy_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xhat = to_f(xv[k].v[j]) * r, g = to_f(gv[k].v[j]);
          dot += g * to_f(wv[k].v[j]) * xhat;
          if constexpr (ACC) acc[k][j] += g * xhat;
        }
      }
    }
    dot = block_sum(dot, scratch) * __frcp_rn(static_cast<float>(n));
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
        Vec<T, VEC> extra;
        if constexpr (DH) extra = load_vec<T, VEC>(dh + row * dh_stride + col);
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xhat = to_f(xv[k].v[j]) * r;
          float v = r * (to_f(gv[k].v[j]) * to_f(wv[k].v[j]) - xhat * dot);
          if constexpr (DH) v += to_f(extra.v[j]);
          out.v[j] = from_f<T>(v);
        }
        store_vec<T, VEC>(dx + row * n + col, out);
      }
    }
  }
  if constexpr (ACC) {
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) partial[int64_t(blockIdx.x) * n + col + j] = acc[k][j];
      }
    }
  }
}

// dx for any row length: the row is read twice from memory.
template <typename T, int VEC, bool DH>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const float* __restrict__ rstd, const T* __restrict__ dh,
    int64_t dh_stride, T* __restrict__ dx, int n) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float r = rstd[row];
  float dot = 0.f;
  for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
    const Vec<T, VEC> xv = load_vec<T, VEC>(x + row * x_stride + col);
    const Vec<T, VEC> gv = load_vec<T, VEC>(dy + row * dy_stride + col);
    const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
#pragma unroll
    for (int j = 0; j < VEC; ++j) dot += to_f(gv.v[j]) * to_f(wv.v[j]) * to_f(xv.v[j]) * r;
  }
  dot = block_sum(dot, scratch) * __frcp_rn(static_cast<float>(n));
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

// dweight partials column by column: group g sums rows g, g+G, g+2G, ...
template <typename T>
__global__ void dweight_partials(const T* __restrict__ dy, int64_t dy_stride,
                                 const T* __restrict__ x, int64_t x_stride,
                                 const float* __restrict__ rstd, float* __restrict__ partial,
                                 int64_t rows, int n) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  float acc = 0.f;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y)
    acc += to_f(dy[row * dy_stride + col]) * to_f(x[row * x_stride + col]) * rstd[row];
  partial[int64_t(blockIdx.y) * n + col] = acc;
}

// dweight[c] = sum over groups of partial[g, c], in group order.
template <typename T>
__global__ void dweight_reduce(const float* __restrict__ partial, int64_t groups, int n,
                               T* __restrict__ dw) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  float acc = 0.f;
  for (int64_t g = 0; g < groups; ++g) acc += partial[g * n + col];
  dw[col] = from_f<T>(acc);
}

// ---- launches (shapes from kernels/common/launch.cuh) ---------------------------------------

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.x.as<T>();
  const T* res = a.residual.present() ? a.residual.as<T>() : nullptr;
  T* h = a.residual.present() ? a.h.as<T>() : nullptr;
  float* rstd = a.rstd.present() ? a.rstd.as<float>() : nullptr;
  constexpr int kVec = 16 / sizeof(T);
  const int vec = ctx.policy == Policy::kReference
                      ? 1
                      : vector_width<T>(p.n, {{x, p.x_stride}, {res, p.residual_stride},
                                              {a.weight.data, 0}, {a.y.data, p.n}, {h, p.n}});
  const Shape s = ctx.policy == Policy::kReference ? Shape{0, 0} : resident_shape(p.n, vec, kForwardElems);
  const int n = static_cast<int>(p.n);
  const dim3 grid(static_cast<unsigned>(p.rows));
  auto launch_resident = [&]<int V, int I>() {
    if (res)
      forward_resident<T, V, I, true><<<grid, s.threads, 0, stream>>>(
          x, p.x_stride, res, p.residual_stride, a.weight.as<T>(), a.y.as<T>(), h, rstd, n, a.eps);
    else
      forward_resident<T, V, I, false><<<grid, s.threads, 0, stream>>>(
          x, p.x_stride, res, 0, a.weight.as<T>(), a.y.as<T>(), h, rstd, n, a.eps);
  };
  if (s.items > 0) {
    with_vec_items<kVec, kForwardElems>(vec, s.items, launch_resident);
  } else {
    const int threads = ctx.policy == Policy::kReference ? 256 : looped_threads(p.n, vec);
    auto launch_looped = [&]<int V, int>() {
      if (res)
        forward_looped<T, V, true><<<grid, threads, 0, stream>>>(
            x, p.x_stride, res, p.residual_stride, a.weight.as<T>(), a.y.as<T>(), h, rstd, n, a.eps);
      else
        forward_looped<T, V, false><<<grid, threads, 0, stream>>>(
            x, p.x_stride, res, 0, a.weight.as<T>(), a.y.as<T>(), h, rstd, n, a.eps);
    };
    with_vec_items<kVec, 16>(vec, 1, launch_looped);
  }
  return cuda::launch_status(kOp);
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* x = a.x.as<T>();
  const T* w = a.weight.as<T>();
  const T* dh = a.dh.present() ? a.dh.as<T>() : nullptr;
  const float* rstd = a.rstd.as<float>();
  float* partial = a.workspace.as<float>();
  const int n = static_cast<int>(p.n);
  constexpr int kVec = 16 / sizeof(T);
  const bool reference = ctx.policy == Policy::kReference;
  const int vec = reference ? 1
                            : vector_width<T>(p.n, {{dy, p.dy_stride}, {x, p.x_stride},
                                                    {w, 0}, {a.dx.data, p.n}, {dh, p.dh_stride}});
  // Fused when the dweight accumulators fit in registers (kFusedElems floats a thread).
  const Shape fused = reference ? Shape{0, 0} : resident_shape(p.n, vec, kFusedElems);
  int64_t groups = p.row_groups;
  if (p.rows > 0) {
    if (fused.items > 0) {
      auto launch = [&]<int V, int I>() {
        {
          const dim3 grid(static_cast<unsigned>(groups));
          if (dh)
            backward_resident<T, V, I, true, true><<<grid, fused.threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, p.dh_stride, a.dx.as<T>(), partial,
                p.rows, n);
          else
            backward_resident<T, V, I, false, true><<<grid, fused.threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, 0, a.dx.as<T>(), partial, p.rows, n);
        }
      };
      with_vec_items<kVec, kFusedElems>(vec, fused.items, launch);
    } else {
      const Shape s = reference ? Shape{0, 0} : resident_shape(p.n, vec, kUnfusedElems);
      const dim3 grid(static_cast<unsigned>(p.rows));
      if (s.items > 0) {
        auto launch = [&]<int V, int I>() {
          if (dh)
            backward_resident<T, V, I, true, false><<<grid, s.threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, p.dh_stride, a.dx.as<T>(), nullptr,
                p.rows, n);
          else
            backward_resident<T, V, I, false, false><<<grid, s.threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, 0, a.dx.as<T>(), nullptr, p.rows, n);
        };
        with_vec_items<kVec, kUnfusedElems>(vec, s.items, launch);
      } else {
        const int threads = reference ? 256 : looped_threads(p.n, vec);
        auto launch = [&]<int V, int>() {
          if (dh)
            backward_looped<T, V, true><<<grid, threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, p.dh_stride, a.dx.as<T>(), n);
          else
            backward_looped<T, V, false><<<grid, threads, 0, stream>>>(
                dy, p.dy_stride, x, p.x_stride, w, rstd, dh, 0, a.dx.as<T>(), n);
        };
        with_vec_items<kVec, 16>(vec, 1, launch);
      }
      const dim3 pgrid((n + 255) / 256, static_cast<unsigned>(groups));
      dweight_partials<T><<<pgrid, 256, 0, stream>>>(dy, p.dy_stride, x, p.x_stride, rstd, partial,
                                                     p.rows, n);
    }
  } else {
    groups = 0;  // no rows: dweight is zero
  }
  dweight_reduce<T><<<(n + 255) / 256, 256, 0, stream>>>(partial, groups, n, a.dweight.as<T>());
  return cuda::launch_status(kOp);
}

}  // namespace

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, kOp, DeviceKind::kCUDA, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::rms_norm_detail
