// rope on CUDA: one elementwise kernel, templated on the storage types of x and
// cos / sin, the pairs a thread handles (P) and the layout (interleaved or not).
// Forward and backward are the same kernel; backward negates sin (a flag).
// fast / deterministic: P pairs a thread, moved as 16-byte accesses of x when every
//   pointer and row stride allows them (else P = 1).
// reference: the same kernel with P = 1, scalar accesses only.
// Each output element is written by exactly one thread: no reductions, no atomics.
// Launch: threadIdx.x / blockIdx.x walk the pair groups of a row, threadIdx.y /
// blockIdx.y the rows, both grid-stride with 64-bit row indices.
#include <climits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"
#include "kernels/rope/rope_kernels.h"

namespace xpu::ops::rope_detail {
namespace {

using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr const char* kOp = "rope";
constexpr int kThreads = 256;

// N consecutive elements as f32: one vector access when VEC, else N scalar ones.
template <bool VEC, typename T, int N>
__device__ __forceinline__ void load_f(const T* p, float (&out)[N]) {
  if constexpr (VEC) {
    const Vec<T, N> v = load_vec<T, N>(p);
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = to_f(v.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = to_f(p[j]);
  }
}

template <bool VEC, typename T, int N>
__device__ __forceinline__ void store_f(T* p, const float (&in)[N]) {
  if constexpr (VEC) {
    Vec<T, N> v;
#pragma unroll
    for (int j = 0; j < N; ++j) v.v[j] = from_f<T>(in[j]);
    store_vec<T, N>(p, v);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) p[j] = from_f<T>(in[j]);
  }
}

struct Args {
  int64_t rows, seq, heads;
  int64_t in_stride, cos_stride, sin_stride;
  int half;     // D / 2
  int groups;   // half / P: pair groups a row
  float sign;   // +1 forward, -1 backward
};

template <typename T, typename C, int P, bool IL>
__global__ void __launch_bounds__(kThreads) rope_kernel(const T* __restrict__ in,
                                                        T* __restrict__ out,
                                                        const C* __restrict__ cos,
                                                        const C* __restrict__ sin, Args a) {
  constexpr bool kVec = P > 1;
  for (int64_t row = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < a.rows;
       row += int64_t(gridDim.y) * blockDim.y) {
    const int64_t pos = (row / a.heads) % a.seq;
    const T* x = in + row * a.in_stride;
    T* y = out + row * (2 * int64_t(a.half));
    const C* cr = cos + pos * a.cos_stride;
    const C* sr = sin + pos * a.sin_stride;
    for (int g = blockIdx.x * blockDim.x + threadIdx.x; g < a.groups;
         g += gridDim.x * blockDim.x) {
      const int i = g * P;  // first pair of the group
      float c[P], s[P];
      load_f<kVec>(cr + i, c);
      load_f<kVec>(sr + i, s);
      if constexpr (IL) {
        float v[2 * P], r[2 * P];
        load_f<kVec>(x + 2 * i, v);
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float sj = a.sign * s[j];
          r[2 * j] = v[2 * j] * c[j] - v[2 * j + 1] * sj;
          r[2 * j + 1] = v[2 * j + 1] * c[j] + v[2 * j] * sj;
        }
        store_f<kVec>(y + 2 * i, r);
      } else {
        float x1[P], x2[P], y1[P], y2[P];
        load_f<kVec>(x + i, x1);
        load_f<kVec>(x + a.half + i, x2);
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float sj = a.sign * s[j];
          y1[j] = x1[j] * c[j] - x2[j] * sj;
          y2[j] = x2[j] * c[j] + x1[j] * sj;
        }
        store_f<kVec>(y + i, y1);
        store_f<kVec>(y + a.half + i, y2);
      }
    }
  }
}

bool aligned_to(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

template <typename T, typename C, int P, bool IL>
void launch(const Problem& p, cudaStream_t stream) {
  Args a{p.rows, p.seq, p.heads, p.in_stride, p.cos_stride, p.sin_stride,
         static_cast<int>(p.d / 2), static_cast<int>(p.d / 2 / P), p.backward ? -1.f : 1.f};
  int tx = 1;
  while (tx < a.groups && tx < kThreads) tx *= 2;
  const int ty = kThreads / tx;
  const int64_t gx = (a.groups + tx - 1) / tx;
  const int64_t gy = std::min<int64_t>((p.rows + ty - 1) / ty, 65535);
  const dim3 grid(cuda::grid_for(gx), static_cast<unsigned>(gy));
  rope_kernel<T, C, P, IL><<<grid, dim3(tx, ty), 0, stream>>>(
      static_cast<const T*>(p.in), static_cast<T*>(p.out), static_cast<const C*>(p.cos),
      static_cast<const C*>(p.sin), a);
}

// Picks P (pairs a thread) for storage types T, C and launches.
template <typename T, typename C, bool IL>
void dispatch(const Problem& p, bool reference, cudaStream_t stream) {
  // Rotate-half: x1 and x2 each move as 16 bytes (P = 16 / sizeof(T) pairs);
  // interleaved: the P pairs are 2P adjacent elements, 16 bytes (P = 8 / sizeof(T)).
  constexpr int kP = IL ? 8 / sizeof(T) : 16 / sizeof(T);
  constexpr int kXElems = IL ? 2 * kP : kP;  // elements of x per 16-byte access
  const int64_t half = p.d / 2;
  bool vec = !reference && half % kP == 0;
  vec = vec && cuda::aligned16(p.in) && p.in_stride % kXElems == 0 && cuda::aligned16(p.out);
  vec = vec && aligned_to(p.cos, kP * sizeof(C)) && p.cos_stride % kP == 0;
  vec = vec && aligned_to(p.sin, kP * sizeof(C)) && p.sin_stride % kP == 0;
  if (vec) launch<T, C, kP, IL>(p, stream);
  else launch<T, C, 1, IL>(p, stream);
}

template <typename T>
Status kernel(const Problem& p, const ExecContext& ctx) {
  if (p.d > INT_MAX / 2)
    return InvalidArgument(kOp, ": D = ", p.d, " is too large for the CUDA kernels");
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool reference = ctx.policy == Policy::kReference;
  auto by_layout = [&]<typename C>() {
    if (p.interleaved) dispatch<T, C, true>(p, reference, stream);
    else dispatch<T, C, false>(p, reference, stream);
  };
  if (p.cs_dtype == DType::kF32) by_layout.template operator()<float>();
  else by_layout.template operator()<T>();
  return cuda::launch_status(kOp);
}

}  // namespace

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, kOp, DeviceKind::kCUDA, []<typename T>() { return std::pair{&kernel<T>, &kernel<T>}; });
}

}  // namespace xpu::ops::rope_detail
