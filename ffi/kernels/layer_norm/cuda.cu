// layer_norm backward on CUDA, and the registration of both directions
// (forward: cuda_forward.cu).
// fast / deterministic: 16-byte rows take the staged walk shared with rms_norm
//   (fused_norm_backward_staged in kernels/common/norm_backward.cuh: one CTA or one
//   cluster a row, x and dy staged by TMA, one read of them for dx and the
//   dweight/dbias partials). Other rows: v1, the row in registers with per-block
//   partials in registers (fused) when they fit, else per-row dx kernels plus a
//   column kernel for the partials. A fixed-order kernel (param_reduce) then sums
//   the partials across row groups (no atomics, so `fast` is also deterministic).
// reference: plain scalar loops re-reading the row from memory.
// Rows are walked grid-stride, so any row count launches within grid limits.
#include <algorithm>

#include "kernels/common/norm_backward.cuh"
#include "kernels/layer_norm/cuda_common.cuh"

namespace xpu::ops::layer_norm_detail {
namespace gpu {
namespace {

using cuda::block_sum2;
using cuda::from_f;
using cuda::load_vec;
using cuda::looped_threads;
using cuda::partials_wide;
using cuda::resident_shape;
using cuda::Shape;
using cuda::store_partial;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;
using cuda::vector_width;
using cuda::with_vec_items;

// Elements a thread holds in registers: fused backward (x, dy and f32 dweight
// and dbias accumulators), unfused backward (x, dy). Larger shapes spill under
// the 128-register cap (checked with -Xptxas -warn-spills).
constexpr int kFusedElems = 16, kUnfusedElems = 32;
// Blocks of the per-row kernels; more rows are walked grid-stride.
constexpr int64_t kMaxRowBlocks = int64_t{1} << 20;
constexpr int kColumnThreads = 256;

// ---- backward -------------------------------------------------------------------------------
// xhat = (x - mean) * rstd, g = dy * weight:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dweight = sum(dy * xhat), dbias = sum(dy).

// dx for the rows of this block; with ACC, also this block's dweight and dbias
// partials over its rows (block b holds rows b, b + G, ..., G = gridDim.x), written
// to partial[b * n + c] and partial[bias_offset + b * n + c].
template <typename T, int VEC, int ITEMS, bool ACC>
__global__ void __launch_bounds__(kMaxThreads) backward_resident(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const float* __restrict__ mean, const float* __restrict__ rstd,
    T* __restrict__ dx, float* __restrict__ partial, int64_t bias_offset, int64_t rows, int n) {
  __shared__ float2 scratch[32];
  const float inv_n = __frcp_rn(static_cast<float>(n));
  float accw[ITEMS][VEC], accb[ITEMS][VEC];
  Vec<T, VEC> wv[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int col = (k * blockDim.x + threadIdx.x) * VEC;
    if (col < n) wv[k] = load_vec<T, VEC>(w + col);
#pragma unroll
    for (int j = 0; j < VEC; ++j) accw[k][j] = accb[k][j] = 0.f;
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float m = mean[row], r = rstd[row];
    Vec<T, VEC> xv[ITEMS], gv[ITEMS];
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
        xv[k] = load_vec<T, VEC>(x + row * x_stride + col);
        gv[k] = load_vec<T, VEC>(dy + row * dy_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xhat = (to_f(xv[k].v[j]) - m) * r, gy = to_f(gv[k].v[j]);
          const float g = gy * to_f(wv[k].v[j]);
          sg += g;
          sgx += g * xhat;
          if constexpr (ACC) {
            accw[k][j] += gy * xhat;
            accb[k][j] += gy;
          }
        }
      }
    }
    const float2 s = block_sum2(sg, sgx, scratch);
    const float mg = s.x * inv_n, mgx = s.y * inv_n;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xhat = (to_f(xv[k].v[j]) - m) * r;
          const float g = to_f(gv[k].v[j]) * to_f(wv[k].v[j]);
          out.v[j] = from_f<T>(r * (g - mg - xhat * mgx));
        }
        store_vec<T, VEC>(dx + row * n + col, out);
      }
    }
  }
  if constexpr (ACC) {
    float* pw = partial + int64_t(blockIdx.x) * n;
    float* pb = partial + bias_offset + int64_t(blockIdx.x) * n;
    const bool wide = partials_wide<VEC>(partial, n, bias_offset);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int col = (k * blockDim.x + threadIdx.x) * VEC;
      if (col < n) {
        store_partial<VEC>(pw + col, accw[k], wide);
        store_partial<VEC>(pb + col, accb[k], wide);
      }
    }
  }
}

// dx for any row length: the row is read twice from memory.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    const T* __restrict__ w, const float* __restrict__ mean, const float* __restrict__ rstd,
    T* __restrict__ dx, int64_t rows, int n) {
  __shared__ float2 scratch[32];
  const float inv_n = __frcp_rn(static_cast<float>(n));
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float m = mean[row], r = rstd[row];
    const T* xr = x + row * x_stride;
    const T* gr = dy + row * dy_stride;
    float sg = 0.f, sgx = 0.f;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> xv = load_vec<T, VEC>(xr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
      const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float g = to_f(gv.v[j]) * to_f(wv.v[j]);
        sg += g;
        sgx += g * ((to_f(xv.v[j]) - m) * r);
      }
    }
    const float2 s = block_sum2(sg, sgx, scratch);
    const float mg = s.x * inv_n, mgx = s.y * inv_n;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> xv = load_vec<T, VEC>(xr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
      const Vec<T, VEC> wv = load_vec<T, VEC>(w + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float xhat = (to_f(xv.v[j]) - m) * r;
        const float g = to_f(gv.v[j]) * to_f(wv.v[j]);
        out.v[j] = from_f<T>(r * (g - mg - xhat * mgx));
      }
      store_vec<T, VEC>(dx + row * n + col, out);
    }
  }
}

// dweight and dbias partials column by column: group g sums rows g, g+G, g+2G, ...
template <typename T>
__global__ void dparam_partials(const T* __restrict__ dy, int64_t dy_stride,
                                const T* __restrict__ x, int64_t x_stride,
                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                float* __restrict__ partial, int64_t bias_offset, int64_t rows,
                                int n) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  float accw = 0.f, accb = 0.f;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const float gy = to_f(dy[row * dy_stride + col]);
    accw += gy * ((to_f(x[row * x_stride + col]) - mean[row]) * rstd[row]);
    accb += gy;
  }
  partial[int64_t(blockIdx.y) * n + col] = accw;
  partial[bias_offset + int64_t(blockIdx.y) * n + col] = accb;
}

// ---- launches (shapes from kernels/common/launch.cuh) ---------------------------------------

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.n, "elements"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* x = a.x.as<T>();
  const T* w = a.weight.as<T>();
  T* dx = a.dx.as<T>();
  const float* mean = a.mean.as<float>();
  const float* rstd = a.rstd.as<float>();
  float* partial = a.workspace.as<float>();
  const int64_t bias_offset = p.row_groups * p.n;  // workspace layout: [2][groups][n]
  const int n = static_cast<int>(p.n);
  constexpr int kVec = 16 / sizeof(T);
  const bool reference = ctx.policy == Policy::kReference;
  const int vec = reference ? 1
                            : vector_width<T>(p.n, {{dy, p.dy_stride}, {x, p.x_stride}, {w, 0},
                                                    {dx, p.n}});
  auto reduce = [&](int64_t groups) {
    return cuda::launch_param_reduce<T>(partial, bias_offset, groups, n, a.dweight.as<T>(),
                                        a.dbias.as<T>(), stream, kOp);
  };
  if (p.rows == 0) return reduce(0);  // no rows: dweight and dbias are zero

  if (!reference) {
    // 16-byte rows: the fused kernel shared with rms_norm (kernels/common/norm_backward.cuh).
    int64_t groups = 0;
    const cuda::NormBackwardArgs<T> args{dy, p.dy_stride, x, p.x_stride, w, mean, rstd, nullptr,
                                         0, dx, partial, bias_offset, p.rows, n, /*eps=*/0.f, 0, 0};
    XPU_RETURN_IF_ERROR(
        cuda::launch_fused_norm_backward<true>(args, vec, p.row_groups, stream, kOp, &groups));
    if (groups > 0) return reduce(groups);
  }
  // Fused (v1) when the dweight and dbias accumulators fit in registers.
  const Shape fused = reference ? Shape{0, 0} : resident_shape(p.n, vec, kFusedElems);
  if (fused.items > 0) {
    // One block per row group: groups <= rows, so every block owns at least one row.
    const dim3 grid(static_cast<unsigned>(p.row_groups));
    auto launch = [&]<int V, int I>() {
      backward_resident<T, V, I, true><<<grid, fused.threads, 0, stream>>>(
          dy, p.dy_stride, x, p.x_stride, w, mean, rstd, dx, partial, bias_offset, p.rows, n);
    };
    with_vec_items<kVec, kFusedElems>(vec, fused.items, launch);
  } else {
    const dim3 grid(static_cast<unsigned>(std::min(p.rows, kMaxRowBlocks)));
    const Shape s = reference ? Shape{0, 0} : resident_shape(p.n, vec, kUnfusedElems);
    if (s.items > 0) {
      auto launch = [&]<int V, int I>() {
        backward_resident<T, V, I, false><<<grid, s.threads, 0, stream>>>(
            dy, p.dy_stride, x, p.x_stride, w, mean, rstd, dx, nullptr, 0, p.rows, n);
      };
      with_vec_items<kVec, kUnfusedElems>(vec, s.items, launch);
    } else {
      const int threads = reference ? kReferenceThreads : looped_threads(p.n, vec);
      auto launch = [&]<int V, int>() {
        backward_looped<T, V><<<grid, threads, 0, stream>>>(dy, p.dy_stride, x, p.x_stride, w,
                                                            mean, rstd, dx, p.rows, n);
      };
      with_vec_items<kVec, 16>(vec, 1, launch);
    }
    XPU_RETURN_IF_ERROR(cuda::launch_status(kOp));
    const dim3 pgrid(static_cast<unsigned>((n + kColumnThreads - 1) / kColumnThreads),
                     static_cast<unsigned>(p.row_groups));
    dparam_partials<T><<<pgrid, kColumnThreads, 0, stream>>>(
        dy, p.dy_stride, x, p.x_stride, mean, rstd, partial, bias_offset, p.rows, n);
  }
  XPU_RETURN_IF_ERROR(cuda::launch_status(kOp));
  return reduce(p.row_groups);
}

}  // namespace
}  // namespace gpu

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, gpu::kOp, DeviceKind::kCUDA,
      []<typename T>() { return std::pair{&gpu::forward<T>, &gpu::backward<T>}; });
}

}  // namespace xpu::ops::layer_norm_detail
