// rope on CUDA: one elementwise kernel, templated on the storage types of x and
// cos / sin, the pairs a thread handles (P), the heads a thread handles (R) and
// the layout (interleaved or not). Forward and backward are the same kernel;
// backward negates sin (a flag).
// fast / deterministic: P pairs of R heads of one token a thread, x moved as 16-byte
//   accesses when every pointer and row stride allows them (else P = R = 1); the R
//   heads share one load of cos / sin. R = 4, 2 or 1, the largest dividing H (at most 2 for
//   2-byte x with rotate-half, see dispatch).
// reference: the same kernel with P = R = 1, scalar accesses only.
// Each output element is written by exactly one thread: no reductions, no atomics.
// Launch: 1-D, grid-stride over 64-bit unit indices (see Args).
// x (dy) is read through its B, S and H strides when they do not collapse to one row
// stride (STRIDED: Hugging Face's q.transpose(1, 2)); the dense case keeps v1's one
// row stride, so its kernel is unchanged.
#include <climits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/fast_div.cuh"
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

// N consecutive elements kept in storage form (converted when used): one vector
// access when VEC, else N scalar ones.
template <bool VEC, typename T, int N>
__device__ __forceinline__ Vec<T, N> load_x(const T* p) {
  if constexpr (VEC) return load_vec<T, N>(p);
  Vec<T, N> v;
#pragma unroll
  for (int j = 0; j < N; ++j) v.v[j] = p[j];
  return v;
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

// A unit of work: one group of P pairs (the same columns) in R consecutive heads of
// one token, so the R rows share one load of cos / sin (one position). Units are
// numbered (token, head block, group), the group fastest: adjacent threads touch
// adjacent 16-byte pieces of one row (coalesced), and the index math is three
// multiply-high divisions a unit (FastDiv), not 64-bit `/` and `%` per row (v1).
struct Args {
  int64_t units;                 // tokens * heads / R * groups
  cuda::FastDiv groups;          // pair groups a row: half / P
  cuda::FastDiv head_blocks;     // heads / R
  cuda::FastDiv seq;             // token -> position: token % seq
  int64_t heads;
  int64_t in_stride, cos_stride, sin_stride;
  int64_t in_sb, in_ss, in_sh;   // STRIDED: in's B, S and H strides
  int half;     // D / 2
  float sign;   // +1 forward, -1 backward
};

// One row: P pairs starting at pair i, x already loaded (2P values each way).
template <typename T, int P, bool IL>
struct RowData {
  Vec<T, IL ? 2 * P : P> a;  // interleaved: the 2P elements; else x1
  Vec<T, IL ? 1 : P> b;      // else x2 (unused when interleaved)
};

// At most 64 registers (4 blocks of 256 threads a SM) so that R rows of 32 bytes
// each stay in flight per thread: 1024 threads x R x 32 bytes a SM.
template <typename T, typename C, int P, int R, bool IL, bool STRIDED>
__global__ void __launch_bounds__(kThreads, 4) rope_kernel(const T* __restrict__ in,
                                                           T* __restrict__ out,
                                                           const C* __restrict__ cos,
                                                           const C* __restrict__ sin, Args a) {
  constexpr bool kVec = P > 1;
  const int64_t d = 2 * int64_t(a.half);
  for (int64_t u = int64_t(blockIdx.x) * kThreads + threadIdx.x; u < a.units;
       u += int64_t(gridDim.x) * kThreads) {
    uint64_t g, hb, pos;
    const uint64_t token = a.head_blocks.divmod(a.groups.divmod(u, &g), &hb);
    const uint64_t batch = a.seq.divmod(token, &pos);
    const int i = static_cast<int>(g) * P;  // first pair of the group
    const int64_t row0 = int64_t(token) * a.heads + int64_t(hb) * R;
    // STRIDED: in's offset of head hb * R of this token; heads r apart are r * in_sh apart.
    const T* in0 = STRIDED ? in + int64_t(batch) * a.in_sb + int64_t(pos) * a.in_ss +
                                 int64_t(hb) * R * a.in_sh
                           : in + row0 * a.in_stride;
    const int64_t head_stride = STRIDED ? a.in_sh : a.in_stride;
    // Every load of x first (independent of cos / sin), then cos / sin, then math.
    RowData<T, P, IL> x[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const T* xr = in0 + r * head_stride;
      if constexpr (IL) {
        x[r].a = load_x<kVec, T, 2 * P>(xr + 2 * i);
      } else {
        x[r].a = load_x<kVec, T, P>(xr + i);
        x[r].b = load_x<kVec, T, P>(xr + a.half + i);
      }
    }
    float c[P], s[P];
    load_f<kVec>(cos + int64_t(pos) * a.cos_stride + i, c);
    load_f<kVec>(sin + int64_t(pos) * a.sin_stride + i, s);
#pragma unroll
    for (int j = 0; j < P; ++j) s[j] *= a.sign;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      T* y = out + (row0 + r) * d;
      if constexpr (IL) {
        float v[2 * P];
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float x0 = to_f(x[r].a.v[2 * j]), x1 = to_f(x[r].a.v[2 * j + 1]);
          v[2 * j] = x0 * c[j] - x1 * s[j];
          v[2 * j + 1] = x1 * c[j] + x0 * s[j];
        }
        store_f<kVec>(y + 2 * i, v);
      } else {
        float y1[P], y2[P];
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float x1 = to_f(x[r].a.v[j]), x2 = to_f(x[r].b.v[j]);
          y1[j] = x1 * c[j] - x2 * s[j];
          y2[j] = x2 * c[j] + x1 * s[j];
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

template <typename T, typename C, int P, int R, bool IL, bool STRIDED>
void launch(const Problem& p, cudaStream_t stream) {
  const int64_t half = p.d / 2, groups = half / P, tokens = p.rows / p.heads;
  Args a{tokens * (p.heads / R) * groups,
         cuda::FastDiv(groups),
         cuda::FastDiv(p.heads / R),
         cuda::FastDiv(p.seq),
         p.heads,
         p.in_stride,
         p.cos_stride,
         p.sin_stride,
         p.in_strides[0],
         p.in_strides[1],
         p.in_strides[2],
         static_cast<int>(half),
         p.backward ? -1.f : 1.f};
  const unsigned grid = cuda::grid_for((a.units + kThreads - 1) / kThreads);
  rope_kernel<T, C, P, R, IL, STRIDED><<<grid, kThreads, 0, stream>>>(
      static_cast<const T*>(p.in), static_cast<T*>(p.out), static_cast<const C*>(p.cos),
      static_cast<const C*>(p.sin), a);
}

// Picks P (pairs a thread) and R (heads a thread) for storage types T, C and launches.
template <typename T, typename C, bool IL, bool STRIDED>
void dispatch(const Problem& p, bool reference, cudaStream_t stream) {
  // Rotate-half: x1 and x2 each move as 16 bytes (P = 16 / sizeof(T) pairs);
  // interleaved: the P pairs are 2P adjacent elements, 16 bytes (P = 8 / sizeof(T)).
  constexpr int kP = IL ? 8 / sizeof(T) : 16 / sizeof(T);
  constexpr int kXElems = IL ? 2 * kP : kP;  // elements of x per 16-byte access
  const int64_t half = p.d / 2;
  bool vec = !reference && half % kP == 0;
  vec = vec && cuda::aligned16(p.in) && cuda::aligned16(p.out);
  if (STRIDED)
    for (int64_t st : p.in_strides) vec = vec && st % kXElems == 0;
  else
    vec = vec && p.in_stride % kXElems == 0;
  vec = vec && aligned_to(p.cos, kP * sizeof(C)) && p.cos_stride % kP == 0;
  vec = vec && aligned_to(p.sin, kP * sizeof(C)) && p.sin_stride % kP == 0;
  // reference and unaligned inputs: one pair, one head a thread, scalar accesses.
  // R = 4 spilled 4-12 bytes (64 registers) for 2-byte x with rotate-half, whose 8
  // pairs a row take 8 registers of x and 16 of f32 cos / sin: R = 2 there, still
  // 64 bytes of x in flight a thread.
  constexpr int kMaxR = !IL && sizeof(T) == 2 ? 2 : 4;
  if (!vec) return launch<T, C, 1, 1, IL, STRIDED>(p, stream);
  if (kMaxR == 4 && p.heads % 4 == 0) launch<T, C, kP, kMaxR, IL, STRIDED>(p, stream);
  else if (p.heads % 2 == 0) launch<T, C, kP, 2, IL, STRIDED>(p, stream);
  else launch<T, C, kP, 1, IL, STRIDED>(p, stream);
}

template <typename T>
Status kernel(const Problem& p, const ExecContext& ctx) {
  if (p.d > INT_MAX / 2)
    return InvalidArgument(kOp, ": D = ", p.d, " is too large for the CUDA kernels");
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool reference = ctx.policy == Policy::kReference;
  auto by_strides = [&]<typename C, bool IL>() {
    if (p.in_rows) dispatch<T, C, IL, false>(p, reference, stream);
    else dispatch<T, C, IL, true>(p, reference, stream);
  };
  auto by_layout = [&]<typename C>() {
    if (p.interleaved) by_strides.template operator()<C, true>();
    else by_strides.template operator()<C, false>();
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
