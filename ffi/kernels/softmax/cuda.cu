// softmax on CUDA.
// fast / deterministic: the row held in registers as 16-byte vectors, one warp per
//   row for short rows (several rows a block) and one block per row otherwise;
//   rows too long for registers (e.g. N = 65536 in f32) are walked twice, an online
//   max/sum pass then the write pass. Reductions run in a fixed order and there are
//   no atomics, so `fast` is also deterministic.
// reference: a plain scalar kernel, one block per row, exp(s - max) / sum.
// exp is evaluated as exp2(x * scale * log2(e) - max), which rounds like exp(s - max).
#include <climits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"
#include "kernels/softmax/softmax_kernels.h"

namespace xpu::ops::softmax_detail {
namespace {

using cuda::block_max;
using cuda::block_sum;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr const char* kOp = "softmax";
constexpr float kLog2e = 1.4426950408889634f;
// 512 threads a block leave each thread up to 128 registers.
constexpr int kMaxThreads = 512;
// Rows a block handles on the warp-per-row path.
constexpr int kWarpRows = 4;
// Elements a thread holds: forward keeps f32 exponentials, backward y and dy.
constexpr int kForwardElems = 64, kBackwardElems = 32;
// The warp-per-row path holds at most this many vectors a lane.
constexpr int kWarpItems = 4;

// ---- forward --------------------------------------------------------------------------------

// WARP: each warp owns a row (kWarpRows rows a block); else the block owns a row.
template <typename T, int VEC, int ITEMS, bool WARP>
__global__ void __launch_bounds__(kMaxThreads) forward_resident(
    const T* __restrict__ x, int64_t x_stride, T* __restrict__ y, int64_t rows, int n, float k) {
  __shared__ float scratch[32];
  const int lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const int width = WARP ? 32 : blockDim.x;
  const int64_t per_block = WARP ? kWarpRows : 1;
  const int64_t first = int64_t(blockIdx.x) * per_block + (WARP ? (threadIdx.x >> 5) : 0);
  // The loop bound is uniform per warp (WARP) or per block, so the reductions inside are safe.
  for (int64_t row = first; row < rows; row += int64_t(gridDim.x) * per_block) {
    float e[ITEMS][VEC];
    float m = -INFINITY;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = (it * width + lane) * VEC;
      if (col < n) {
        const Vec<T, VEC> v = load_vec<T, VEC>(x + row * x_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          e[it][j] = k * to_f(v.v[j]);
          m = fmaxf(m, e[it][j]);
        }
      }
    }
    m = WARP ? cuda::warp_max(m) : block_max(m, scratch);
    float s = 0.f;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = (it * width + lane) * VEC;
      if (col < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          e[it][j] = exp2f(e[it][j] - m);
          s += e[it][j];
        }
      }
    }
    s = WARP ? cuda::warp_sum(s) : block_sum(s, scratch);
    const float inv = __fdividef(1.0f, s);  // s >= 1 (or NaN): no slow-path call
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = (it * width + lane) * VEC;
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(e[it][j] * inv);
        store_vec<T, VEC>(y + row * n + col, out);
      }
    }
  }
}

// Any row length: pass 1 keeps a running (max, sum) per thread, pass 2 re-reads and
// writes. A running max of -inf is treated as 0 when rescaling so that rows starting
// with -inf (masks) do not produce inf - inf; NaN still propagates.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) forward_looped(
    const T* __restrict__ x, int64_t x_stride, T* __restrict__ y, int64_t rows, int n, float k) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    float m = -INFINITY, s = 0.f;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      float t[VEC];
      float vm = -INFINITY;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        t[j] = k * to_f(v.v[j]);
        vm = fmaxf(vm, t[j]);
      }
      const float mn = fmaxf(m, vm);
      const float base = mn == -INFINITY ? 0.f : mn;
      float add = 0.f;
#pragma unroll
      for (int j = 0; j < VEC; ++j) add += exp2f(t[j] - base);
      s = s * exp2f(m - base) + add;
      m = mn;
    }
    const float rm = block_max(m, scratch);
    s = block_sum(s * exp2f(m - (rm == -INFINITY ? 0.f : rm)), scratch);
    const float inv = __fdividef(1.0f, s);  // s >= 1 (or NaN): no slow-path call
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(exp2f(k * to_f(v.v[j]) - rm) * inv);
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// The plain definition, scalar accesses: max, sum of exp, then exp / sum.
template <typename T>
__global__ void forward_reference(const T* __restrict__ x, int64_t x_stride, T* __restrict__ y,
                                  int64_t rows, int n, float scale) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, scale * to_f(xr[i]));
    m = block_max(m, scratch);
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(scale * to_f(xr[i]) - m);
    s = block_sum(s, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      y[row * n + i] = from_f<T>(expf(scale * to_f(xr[i]) - m) / s);
  }
}

// ---- backward -------------------------------------------------------------------------------

template <typename T, int VEC, int ITEMS, bool WARP>
__global__ void __launch_bounds__(kMaxThreads) backward_resident(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ y, int64_t y_stride,
    T* __restrict__ dx, int64_t rows, int n, float scale) {
  __shared__ float scratch[32];
  const int lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const int width = WARP ? 32 : blockDim.x;
  const int64_t per_block = WARP ? kWarpRows : 1;
  const int64_t first = int64_t(blockIdx.x) * per_block + (WARP ? (threadIdx.x >> 5) : 0);
  for (int64_t row = first; row < rows; row += int64_t(gridDim.x) * per_block) {
    Vec<T, VEC> yv[ITEMS], gv[ITEMS];
    float dot = 0.f;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = (it * width + lane) * VEC;
      if (col < n) {
        yv[it] = load_vec<T, VEC>(y + row * y_stride + col);
        gv[it] = load_vec<T, VEC>(dy + row * dy_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) dot += to_f(gv[it].v[j]) * to_f(yv[it].v[j]);
      }
    }
    dot = WARP ? cuda::warp_sum(dot) : block_sum(dot, scratch);
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = (it * width + lane) * VEC;
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j)
          out.v[j] = from_f<T>(scale * to_f(yv[it].v[j]) * (to_f(gv[it].v[j]) - dot));
        store_vec<T, VEC>(dx + row * n + col, out);
      }
    }
  }
}

// Any row length (and the reference with VEC = 1): the rows are read twice.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ y, int64_t y_stride,
    T* __restrict__ dx, int64_t rows, int n, float scale) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* yr = y + row * y_stride;
    const T* gr = dy + row * dy_stride;
    float dot = 0.f;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> yv = load_vec<T, VEC>(yr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
#pragma unroll
      for (int j = 0; j < VEC; ++j) dot += to_f(gv.v[j]) * to_f(yv.v[j]);
    }
    dot = block_sum(dot, scratch);
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> yv = load_vec<T, VEC>(yr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        out.v[j] = from_f<T>(scale * to_f(yv.v[j]) * (to_f(gv.v[j]) - dot));
      store_vec<T, VEC>(dx + row * n + col, out);
    }
  }
}

// ---- launch choices -------------------------------------------------------------------------

Status check_n(int64_t n) {
  // Column indices are int inside the kernels, with headroom for col += threads * VEC.
  if (n > INT_MAX / 2)
    return InvalidArgument(kOp, ": rows of ", n, " elements are too long for the CUDA kernels");
  return Status::Ok();
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(check_n(p.n));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.x.as<T>();
  T* y = a.y.as<T>();
  const int n = static_cast<int>(p.n);
  if (ctx.policy == Policy::kReference) {
    forward_reference<T><<<cuda::grid_for(p.rows), 256, 0, stream>>>(x, p.x_stride, y, p.rows, n,
                                                                      a.scale);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const float k = a.scale * kLog2e;
  const int vec = cuda::vector_width<T>(p.n, {{x, p.x_stride}, {y, p.n}});
  const cuda::RowShape warp = cuda::resident_shape(p.n, vec, kForwardElems, 32, kWarpItems);
  const cuda::RowShape block = cuda::resident_shape(p.n, vec, kForwardElems, kMaxThreads);
  if (warp.items > 0) {
    const unsigned grid = cuda::grid_for((p.rows + kWarpRows - 1) / kWarpRows);
    cuda::with_vec_items<kVec, kForwardElems, kWarpItems>(vec, warp.items, [&]<int V, int I>() {
      forward_resident<T, V, I, true>
          <<<grid, 32 * kWarpRows, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
    });
  } else if (block.items > 0) {
    cuda::with_vec_items<kVec, kForwardElems, 16>(vec, block.items, [&]<int V, int I>() {
      forward_resident<T, V, I, false>
          <<<cuda::grid_for(p.rows), block.threads, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
    });
  } else {
    const int threads = cuda::looped_threads(p.n, vec, kMaxThreads);
    const unsigned grid = cuda::grid_for(p.rows);
    if (vec == 1)
      forward_looped<T, 1><<<grid, threads, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
    else
      forward_looped<T, kVec><<<grid, threads, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
  }
  return cuda::launch_status(kOp);
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(check_n(p.n));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* y = a.y.as<T>();
  T* dx = a.dx.as<T>();
  const int n = static_cast<int>(p.n);
  const unsigned row_grid = cuda::grid_for(p.rows);
  if (ctx.policy == Policy::kReference) {
    backward_looped<T, 1><<<row_grid, 256, 0, stream>>>(dy, p.dy_stride, y, p.y_stride, dx,
                                                        p.rows, n, a.scale);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const int vec = cuda::vector_width<T>(p.n, {{dy, p.dy_stride}, {y, p.y_stride}, {dx, p.n}});
  const cuda::RowShape warp = cuda::resident_shape(p.n, vec, kBackwardElems, 32, kWarpItems);
  const cuda::RowShape block = cuda::resident_shape(p.n, vec, kBackwardElems, kMaxThreads);
  if (warp.items > 0) {
    const unsigned grid = cuda::grid_for((p.rows + kWarpRows - 1) / kWarpRows);
    cuda::with_vec_items<kVec, kBackwardElems, kWarpItems>(vec, warp.items, [&]<int V, int I>() {
      backward_resident<T, V, I, true><<<grid, 32 * kWarpRows, 0, stream>>>(
          dy, p.dy_stride, y, p.y_stride, dx, p.rows, n, a.scale);
    });
  } else if (block.items > 0) {
    cuda::with_vec_items<kVec, kBackwardElems, 16>(vec, block.items, [&]<int V, int I>() {
      backward_resident<T, V, I, false><<<row_grid, block.threads, 0, stream>>>(
          dy, p.dy_stride, y, p.y_stride, dx, p.rows, n, a.scale);
    });
  } else {
    const int threads = cuda::looped_threads(p.n, vec, kMaxThreads);
    if (vec == 1)
      backward_looped<T, 1><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, y, p.y_stride, dx,
                                                              p.rows, n, a.scale);
    else
      backward_looped<T, kVec><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, y, p.y_stride,
                                                                 dx, p.rows, n, a.scale);
  }
  return cuda::launch_status(kOp);
}

}  // namespace

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, kOp, DeviceKind::kCUDA, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::softmax_detail
