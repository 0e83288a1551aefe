// topk_softmax on CUDA (design, floor and predictions: docs/kernels/topk_softmax.md).
//
// Forward, fast and deterministic (k <= 32): a row belongs to a group of G lanes
// (G = 8 or 16: several rows a warp; 32: a warp a row) or to W warps of a block
// (E past one warp's registers, up to 4096). Each lane loads its part of the row once
// (16-byte vectors where the rows allow, the next row's part in flight meanwhile)
// and turns every element into a key whose integer order is the op's order: the
// value's order-preserving bits above the inverted column, so the largest key is
// the largest value at the lowest index (NaN above +inf, -0 equal to +0). 16-bit
// types fit a 32-bit key; f32 takes 64 bits. Selection is k rounds of a group
// max (redux.sync for groups of 16 and 32 lanes; xor shuffles for 8) over each
// lane's best remaining key; a lane keeps its best two, so it rescans its keys only
// when it wins a third time. Round r's winner stays in lane r, which writes
// weights[r] and indices[r]. The max is round 0's winner; with renormalize only
// the k chosen exponentials are summed, otherwise every lane sums its row part.
// W warps: each warp selects its own k, warp 0 selects k among the W * k and
// merges the warps' (max, sum) pairs in warp order.
// k > 32: one block a row sorts its keys in shared memory (bitonic) and writes the
// first k. reference: one block a row, each key's rank counted over the whole row.
// Backward: a group of lanes a row writes the dense part (0, or -p_v dot) with
// vector stores, then the k chosen entries; a shared-memory bitmap catches
// indices out of range or repeated (that row becomes NaN). reference: one block a
// row, each element looks for itself among the indices.
// Every sum runs in a fixed order and nothing uses atomics on floats: `fast` is
// deterministic too.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/common/row_launch.cuh"
#include "xpuruntime/ops/topk_softmax.h"

namespace xpu::ops::topk_softmax_detail::gpu {
namespace {

using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr const char* kOp = "topk_softmax";
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxFastK = 32;     // round r's winner lives in lane r
constexpr int kGroupThreads = 128;  // blocks of the row-group kernels (forward W = 1, backward)
constexpr int kRowThreads = 256;    // blocks of the one-block-a-row kernels

// ---- keys ----------------------------------------------------------------------------------

// Order-preserving maps of sign-magnitude bits onto unsigned integers: 0x80000000
// plus or minus the magnitude (so -0 and +0 meet), every NaN at the top, the most
// negative value at 1 or more (0 means "no key"). `u` holds the value's bits at the
// top of the word; for 16-bit types the low half is ignored and comes back zero.
template <uint32_t kMag, uint32_t kInf>
__device__ __forceinline__ uint32_t ordered(uint32_t u) {
  const uint32_t s = static_cast<uint32_t>(static_cast<int32_t>(u) >> 31);  // 0 or ~0
  const uint32_t m = u & kMag;
  const uint32_t o = ((m ^ s) - s) + 0x80000000u;  // conditional negate, then offset
  return m > kInf ? kMag | 0x80000000u : o;
}
__device__ __forceinline__ uint32_t ordered32(float f) {
  return ordered<0x7fffffffu, 0x7f800000u>(__float_as_uint(f));
}
// The inverse, from the top 32 - `shift` bits (a NaN comes back as a quiet NaN).
__device__ __forceinline__ uint32_t unordered(uint32_t o, int shift) {
  const uint32_t half = 0x80000000u >> shift;
  return o >= half ? o - half : half | (half - o);
}
__device__ __forceinline__ float unordered32(uint32_t o) { return __uint_as_float(unordered(o, 0)); }

// A key per element: the ordered value above the inverted column.
template <typename T>
struct Keys {  // float16 and bfloat16: 32 bits, the ordered value in the high half
  using Key = uint32_t;
  static constexpr uint32_t kInf = std::is_same_v<T, __half> ? 0x7c000000u : 0x7f800000u;
  // The V (even, or 1) elements of one vector, in memory order.
  template <int V>
  __device__ __forceinline__ static void make(const Vec<T, V>& v, int col, Key* out) {
    if constexpr (V == 1) {
      out[0] = ordered<0x7fff0000u, kInf>(cuda::bits16(v.v[0]) << 16) | (0xffffu - col);
    } else {
      uint32_t w[V / 2];
      memcpy(w, &v, sizeof(w));
#pragma unroll
      for (int i = 0; i < V / 2; ++i) {  // low half: element 2i; high half: 2i + 1
        out[2 * i] = ordered<0x7fff0000u, kInf>(w[i] << 16) | (0xffffu - (col + 2 * i));
        out[2 * i + 1] = ordered<0x7fff0000u, kInf>(w[i]) | (0xffffu - (col + 2 * i + 1));
      }
    }
  }
  __device__ __forceinline__ static float value(Key k) {
    const auto bits = static_cast<unsigned short>(unordered(k >> 16, 16));
    if constexpr (std::is_same_v<T, __half>) return __half2float(__ushort_as_half(bits));
    else return __bfloat162float(__ushort_as_bfloat16(bits));
  }
  __device__ __forceinline__ static int index(Key k) { return 0xffff - static_cast<int>(k & 0xffffu); }
};

// 64 bits from any value as f32 (the f32 logits, and the shared-memory kernels of every dtype).
struct Keys64 {
  using Key = uint64_t;
  __device__ __forceinline__ static Key make(float v, int col) {
    return (uint64_t{ordered32(v)} << 32) | (0xffffffffu - static_cast<uint32_t>(col));
  }
  template <int V>
  __device__ __forceinline__ static void make(const Vec<float, V>& v, int col, Key* out) {
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = make(v.v[j], col + j);
  }
  __device__ __forceinline__ static float value(Key k) { return unordered32(static_cast<uint32_t>(k >> 32)); }
  __device__ __forceinline__ static int index(Key k) {
    return static_cast<int>(0xffffffffu - static_cast<uint32_t>(k));
  }
};
template <>
struct Keys<float> : Keys64 {};

// ---- groups of G lanes (8, 16 or 32) inside a warp; the whole warp calls each -------------

template <int G>
__device__ __forceinline__ unsigned group_mask() {
  if constexpr (G == 32) return 0xffffffffu;
  else return ((1u << G) - 1u) << (threadIdx.x & 31u & ~unsigned(G - 1));
}

template <int G>
__device__ __forceinline__ uint32_t group_max(uint32_t v) {
  if constexpr (G >= 16) {
    return __reduce_max_sync(group_mask<G>(), v);
  } else {
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  }
}
template <int G>
__device__ __forceinline__ uint64_t group_max(uint64_t v) {
  if constexpr (G >= 16) {
    const uint32_t hi = group_max<G>(static_cast<uint32_t>(v >> 32));
    const uint32_t lo = group_max<G>(static_cast<uint32_t>(v >> 32) == hi ? static_cast<uint32_t>(v) : 0u);
    return (uint64_t{hi} << 32) | lo;
  } else {
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) {
      const uint64_t other = __shfl_xor_sync(0xffffffffu, v, o);
      v = other > v ? other : v;
    }
    return v;
  }
}

// Butterfly sum: every lane of the group ends with the same bits (a + b == b + a).
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int G>
__device__ __forceinline__ bool group_any(bool v) {
  return (__ballot_sync(0xffffffffu, v) & group_mask<G>()) != 0;
}

// The k (<= G) largest of the group's keys, round r's winner returned in lane r
// (0 elsewhere, and for rounds past the group's keys); *top = round 0's winner in
// every lane. `g`: this lane's place in the group. A lane keeps its best two keys; the
// winner of a round moves to its second, or, once that is spent (h2 == 0), rescans
// for its best key below the one it gave (a group out of keys gives 0 and rescans
// to 0 again).
template <int G, typename Key, int M>
__device__ __forceinline__ Key select_top(const Key (&keys)[M], int k, int g, Key* top) {
  Key h1 = 0, h2 = 0;
#pragma unroll
  for (int i = 0; i < M; ++i) {
    h2 = max(h2, min(h1, keys[i]));
    h1 = max(h1, keys[i]);
  }
  Key mine = 0;
#pragma unroll 1
  for (int r = 0; r < k; ++r) {
    const Key w = group_max<G>(h1);
    mine = g == r ? w : mine;
    if (h1 == w) {  // keys are distinct: one lane of the group won
      if (h2 != 0) {
        h1 = h2;
        h2 = 0;
      } else {
        Key next = 0;
#pragma unroll
        for (int i = 0; i < M; ++i) next = max(next, keys[i] < w ? keys[i] : Key{0});
        h1 = next;
      }
    }
  }
  *top = __shfl_sync(0xffffffffu, mine, 0, G);
  return mine;
}

// ---- forward, k <= 32 ----------------------------------------------------------------------

// Rows of e elements, G * W lanes a row, lane g holding vectors g, g + G * W, ...
// (I of them, V elements each). W == 1: blocks of kGroupThreads, 32 / G rows a warp.
template <typename T, int V, int I, int G, int W>
__global__ void __launch_bounds__(W > 1 ? 32 * W : kGroupThreads)
    forward_fast(const T* __restrict__ x, int64_t x_stride, float* __restrict__ weights,
                 int32_t* __restrict__ indices, int64_t rows, int e, int k, bool renorm) {
  using K = Keys<T>;
  using Key = typename K::Key;
  constexpr int kLanes = G * W, kStride = kLanes * V, M = V * I;
  constexpr int kSeg = W > 1 ? 1 : 32 / G;  // rows a warp holds at once
  constexpr int kG = W > 1 ? 32 : G;        // lanes of one selection: a group or a warp
  static_assert(W == 1 || G == 32, "rows of several warps take whole warps");
  __shared__ Key cand[2][W][32];  // W > 1: each warp's k best (double-buffered by row parity)
  __shared__ float2 part[2][W];   // W > 1: each warp's (max * log2 e, sum of exp2) pair
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = W > 1 ? static_cast<int>(threadIdx.x) : (lane & (G - 1));
  const int seg = W > 1 ? 0 : lane / G;
  const int first = g * V;
  const int64_t unit = W > 1 ? blockIdx.x : int64_t(blockIdx.x) * (kGroupThreads / 32) + warp;
  const int64_t units = W > 1 ? gridDim.x : int64_t(gridDim.x) * (kGroupThreads / 32);

  struct Row {
    Vec<T, V> v[I];
  };
  auto load = [&](int64_t row0, Row& r) {
    const int64_t row = row0 + seg;
    if (row >= rows) return;
#pragma unroll
    for (int it = 0; it < I; ++it) {
      const int col = first + it * kStride;
      if (col < e) r.v[it] = load_vec<T, V>(x + row * x_stride + col);
    }
  };
  auto body = [&](int64_t row0, const Row& r, int parity) {
    const int64_t row = row0 + seg;
    const bool live = row < rows;
    Key keys[M];
#pragma unroll
    for (int it = 0; it < I; ++it) {
      const int col = first + it * kStride;  // whole vectors lie inside the row or past it
      if (live && col < e) {
        K::make(r.v[it], col, keys + it * V);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) keys[it * V + j] = 0;
      }
    }
    // This lane's sum of exp2(v log2e - base) over its part of the row.
    auto part_sum = [&](float base) {
      float s = 0.f;
#pragma unroll
      for (int it = 0; it < I; ++it) {
        if (live && first + it * kStride < e) {
#pragma unroll
          for (int j = 0; j < V; ++j) s += exp2f(fmaf(to_f(r.v[it].v[j]), kLog2e, -base));
        }
      }
      return s;
    };
    Key top = 0;
    Key mine = select_top<kG>(keys, k, lane & (kG - 1), &top);
    float sum_all = 0.f;  // without renormalize: the row's sum of exp2 against the max
    float mL = 0.f;       // max * log2 e
    if constexpr (W > 1) {
      const float wL = top ? K::value(top) * kLog2e : -INFINITY;
      const float ws = renorm || !top ? 0.f : group_sum<32>(part_sum(wL));
      cand[parity][warp][lane] = mine;
      if (lane == 0) part[parity][warp] = make_float2(wL, ws);
      __syncthreads();  // one a row: buffers alternate with the row parity
      if (warp != 0) return;
      Key merged[W];
#pragma unroll
      for (int w = 0; w < W; ++w) merged[w] = cand[parity][w][lane];
      mine = select_top<32>(merged, k, lane, &top);
      mL = K::value(top) * kLog2e;
      if (!renorm) {
#pragma unroll
        for (int w = 0; w < W; ++w) sum_all += part[parity][w].y * exp2f(part[parity][w].x - mL);
      }
    } else {
      mL = K::value(top) * kLog2e;
      if (!renorm) sum_all = group_sum<G>(part_sum(mL));
    }
    const int rank = lane & (kG - 1);  // this lane holds the rank-th largest
    const float ex = rank < k ? exp2f(fmaf(K::value(mine), kLog2e, -mL)) : 0.f;
    const float sum = renorm ? group_sum<kG>(ex) : sum_all;
    if (live && rank < k) {
      weights[row * k + rank] = ex / sum;
      indices[row * k + rank] = K::index(mine);
    }
  };
  cuda::walk_rows<Row>(unit * kSeg, rows, units * kSeg, load, body);
}

// ---- forward, k > 32: one block a row, keys sorted in shared memory ------------------------

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    forward_sorted(const T* __restrict__ x, int64_t x_stride, float* __restrict__ weights,
                   int32_t* __restrict__ indices, int64_t rows, int e, int k, bool renorm, int p) {
  extern __shared__ uint64_t key[];  // p >= e keys, p a power of two
  __shared__ float scratch[32];
  const int tid = threadIdx.x;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    for (int i = tid; i < p; i += blockDim.x) key[i] = i < e ? Keys64::make(to_f(xr[i]), i) : 0;
    __syncthreads();
    // Bitonic sort, descending: runs of `size` alternate direction until the last.
    for (int size = 2; size <= p; size <<= 1) {
      for (int half = size >> 1; half > 0; half >>= 1) {
        for (int t = tid; t < p / 2; t += blockDim.x) {
          const int lo = 2 * t - (t & (half - 1)), hi = lo + half;
          const uint64_t a = key[lo], b = key[hi];
          if ((a < b) == ((lo & size) == 0)) {
            key[lo] = b;
            key[hi] = a;
          }
        }
        __syncthreads();
      }
    }
    const float mL = Keys64::value(key[0]) * kLog2e;
    float s = 0.f;
    for (int i = tid; i < (renorm ? k : e); i += blockDim.x)
      s += exp2f(fmaf(Keys64::value(key[i]), kLog2e, -mL));
    s = cuda::block_sum(s, scratch);
    for (int i = tid; i < k; i += blockDim.x) {
      weights[row * k + i] = exp2f(fmaf(Keys64::value(key[i]), kLog2e, -mL)) / s;
      indices[row * k + i] = Keys64::index(key[i]);
    }
    __syncthreads();  // the keys are rewritten for the next row
  }
}

// ---- forward, reference: the definition, one block a row -----------------------------------

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    forward_reference(const T* __restrict__ x, int64_t x_stride, float* __restrict__ weights,
                      int32_t* __restrict__ indices, int64_t rows, int e, int k, bool renorm) {
  extern __shared__ uint32_t ord[];  // e ordered values, then the chosen ones by rank
  uint32_t* chosen = ord + e;
  __shared__ float scratch[32];
  const int tid = threadIdx.x;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    for (int i = tid; i < e; i += blockDim.x) ord[i] = ordered32(to_f(xr[i]));
    __syncthreads();
    // rank = how many elements come before this one: larger, or equal at a lower index.
    for (int i = tid; i < e; i += blockDim.x) {
      int rank = 0;
      for (int j = 0; j < e; ++j) rank += ord[j] > ord[i] || (ord[j] == ord[i] && j < i);
      if (rank < k) {
        chosen[rank] = ord[i];
        indices[row * k + rank] = i;
      }
    }
    __syncthreads();
    const float m = unordered32(chosen[0]);
    float s = 0.f;
    for (int i = tid; i < (renorm ? k : e); i += blockDim.x)
      s += expf(unordered32(renorm ? chosen[i] : ord[i]) - m);
    s = cuda::block_sum(s, scratch);
    for (int i = tid; i < k; i += blockDim.x) weights[row * k + i] = expf(unordered32(chosen[i]) - m) / s;
    __syncthreads();
  }
}

// ---- backward ------------------------------------------------------------------------------

// What every backward kernel reads; a row's [..., k] entries at row * stride + j.
template <typename T>
struct BackwardIn {
  const float* dw;
  int64_t dw_stride;
  const T* x;
  int64_t x_stride;
  const int32_t* idx;
  int64_t idx_stride;
  const float* w;
  int64_t w_stride;
  T* dx;
  int64_t rows;
  int e, k;
  bool renorm;
};

// Lanes g of a group of G own entries g, g + G, ... of the k chosen and vectors
// g, g + G, ... of the dense row; 32 / G rows a warp.
template <typename T, int V, int G>
__global__ void __launch_bounds__(kGroupThreads) backward_rows(BackwardIn<T> a) {
  constexpr int kSeg = 32 / G, kWarps = kGroupThreads / 32;
  constexpr int kWords = static_cast<int>(kTopKSoftmaxMaxExperts / 32);
  __shared__ uint32_t seen_all[kWarps][kSeg][kWords];  // which columns were chosen
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane & (G - 1), seg = lane / G;
  uint32_t* seen = seen_all[warp][seg];
  const int words = (a.e + 31) / 32;
  const int64_t step = int64_t(gridDim.x) * kWarps * kSeg;
#pragma unroll 1
  for (int64_t row0 = (int64_t(blockIdx.x) * kWarps + warp) * kSeg; row0 < a.rows; row0 += step) {
    const int64_t row = row0 + seg;
    const bool live = row < a.rows;
    for (int i = g; i < words; i += G) seen[i] = 0;
    __syncwarp();
    const int32_t* idx = a.idx + row * a.idx_stride;
    const float* dw = a.dw + row * a.dw_stride;
    const float* w = a.w + row * a.w_stride;
    bool bad = false;
    float dot = 0.f;
    if (live) {
      for (int j = g; j < a.k; j += G) {
        const int i = idx[j];
        if (static_cast<unsigned>(i) >= static_cast<unsigned>(a.e)) {
          bad = true;
        } else {
          const uint32_t bit = 1u << (i & 31);
          bad |= (atomicOr(&seen[i >> 5], bit) & bit) != 0;
        }
        dot += dw[j] * w[j];
      }
    }
    bad = group_any<G>(bad);
    dot = group_sum<G>(dot);
    // Without renormalize p_v = w_0 exp(x_v - x[indices[0]]): the max and 1 / sum.
    float mL = 0.f, w0 = 0.f;
    const T* xr = a.x + row * a.x_stride;
    if (live && !bad && !a.renorm) {
      mL = to_f(xr[idx[0]]) * kLog2e;
      w0 = w[0];
    }
    T* dx = a.dx + row * a.e;
    if (live) {
      for (int col = g * V; col < a.e; col += G * V) {
        Vec<T, V> out;
        if (bad || a.renorm) {
#pragma unroll
          for (int j = 0; j < V; ++j) out.v[j] = from_f<T>(bad ? NAN : 0.f);
        } else {
          const Vec<T, V> in = load_vec<T, V>(xr + col);
#pragma unroll
          for (int j = 0; j < V; ++j)
            out.v[j] = from_f<T>(-dot * (w0 * exp2f(fmaf(to_f(in.v[j]), kLog2e, -mL))));
        }
        store_vec<T, V>(dx + col, out);
      }
    }
    __syncwarp();  // the dense stores before the chosen entries overwrite theirs
    if (live && !bad) {
      for (int j = g; j < a.k; j += G) dx[idx[j]] = from_f<T>(w[j] * (dw[j] - dot));
    }
    __syncwarp();  // `seen` is cleared for the next row only after every lane used it
  }
}

// The definition, one block a row: each element looks for itself among the indices.
template <typename T>
__global__ void __launch_bounds__(kRowThreads) backward_reference(BackwardIn<T> a) {
  __shared__ float scratch[32];
  const int tid = threadIdx.x;
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int32_t* idx = a.idx + row * a.idx_stride;
    const float* dw = a.dw + row * a.dw_stride;
    const float* w = a.w + row * a.w_stride;
    int bad = 0;
    float dot = 0.f;
    for (int j = tid; j < a.k; j += blockDim.x) {
      bad |= idx[j] < 0 || idx[j] >= a.e;
      for (int i = 0; i < j; ++i) bad |= idx[i] == idx[j];
      dot += dw[j] * w[j];
    }
    bad = __syncthreads_or(bad);
    dot = cuda::block_sum(dot, scratch);
    const T* xr = a.x + row * a.x_stride;
    const float m = bad || a.renorm ? 0.f : to_f(xr[idx[0]]);
    for (int v = tid; v < a.e; v += blockDim.x) {
      float d = a.renorm || bad ? 0.f : -dot * (w[0] * expf(to_f(xr[v]) - m));
      for (int j = 0; j < a.k; ++j)
        if (idx[j] == v) d = w[j] * (dw[j] - dot);
      a.dx[row * a.e + v] = from_f<T>(bad ? NAN : d);
    }
  }
}

// ---- host ----------------------------------------------------------------------------------

int pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

// The fast forward's row group: `lanes` = G * W lanes a row holding `items` vectors
// of `vec` each. Rows of a warp or less take the fewest lanes (at least 8, and one per
// chosen entry) that keep kTargetElems<T> elements a lane: a selection round costs the
// same few instructions for a group of 8 as for a warp, so smaller groups (more rows a
// warp) cost less a row, until the rescans of lanes holding many keys outweigh that
// (docs/kernels/topk_softmax.md). Longer rows hold kMaxElems<T> a lane, over W warps.
struct FastShape {
  int vec, items, lanes;
};
template <typename T>
inline constexpr int kTargetElems = sizeof(T) == 4 ? 8 : 16;  // f32 keys take 64 bits
template <typename T>
inline constexpr int kMaxElems = sizeof(T) == 4 ? 16 : 32;

template <typename T>
FastShape fast_shape(int64_t e, int64_t k, int vec) {
  const int64_t nvec = (e + vec - 1) / vec;
  const int target = std::max(1, kTargetElems<T> / vec), most = kMaxElems<T> / vec;
  int lanes = std::max({8, pow2_at_least(k), pow2_at_least((nvec + target - 1) / target)});
  if (lanes > 32) lanes = std::max(32, pow2_at_least((nvec + most - 1) / most));
  const int items = lanes > 32 ? most : pow2_at_least((nvec + lanes - 1) / lanes);
  return {vec, items, lanes};
}

// Returns f.template operator()<V, I, G, W>() for the shape (only shapes fast_shape returns).
template <typename T, typename F>
Status with_fast_shape(const FastShape& s, F&& f) {
  auto by_vec = [&]<int V>() -> Status {
    constexpr int kTarget = std::max(1, kTargetElems<T> / V), kMost = kMaxElems<T> / V;
    auto by_items = [&]<int G, int kItems>() -> Status {
      auto one = [&]<int I>() -> Status {
        if constexpr (I <= kItems) return f.template operator()<V, I, G, 1>();
        return Error(StatusCode::kInternal, kOp, ": no kernel for ", I, " items a lane");
      };
      switch (s.items) {
        case 1: return one.template operator()<1>();
        case 2: return one.template operator()<2>();
        case 4: return one.template operator()<4>();
        case 8: return one.template operator()<8>();
        case 16: return one.template operator()<16>();
        default: return one.template operator()<32>();
      }
    };
    switch (s.lanes) {
      case 8: return by_items.template operator()<8, kTarget>();
      case 16: return by_items.template operator()<16, kTarget>();
      case 32: return by_items.template operator()<32, kMost>();
      case 64: return f.template operator()<V, kMost, 32, 2>();
      case 128: return f.template operator()<V, kMost, 32, 4>();
      default:
        if constexpr (kMaxElems<T> == 16) return f.template operator()<V, kMost, 32, 8>();  // f32 only
        return Error(StatusCode::kInternal, kOp, ": no kernel for ", s.lanes, " lanes a row");
    }
  };
  if (s.vec == 1) return by_vec.template operator()<1>();
  return by_vec.template operator()<16 / int(sizeof(T))>();
}

// Persistent grid: at most as many blocks as are resident at once.
Status persistent_grid(const void* kernel, int threads, int64_t units, unsigned* grid) {
  int resident = 0;
  XPU_RETURN_IF_ERROR(cuda::resident_count(kernel, threads, 1, &resident));
  *grid = cuda::grid_for(std::min<int64_t>(units, std::max(resident, 1)));
  return Status::Ok();
}

}  // namespace

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.logits.as<T>();
  float* w = a.weights.as<float>();
  int32_t* idx = a.indices.as<int32_t>();
  const int e = static_cast<int>(p.e), k = static_cast<int>(p.k);
  const unsigned rows_grid = cuda::grid_for(p.rows);
  if (ctx.policy == Policy::kReference) {
    forward_reference<T><<<rows_grid, kRowThreads, 2 * e * sizeof(uint32_t), stream>>>(
        x, p.logits_stride, w, idx, p.rows, e, k, a.renormalize);
    return cuda::launch_status(kOp);
  }
  if (k > kMaxFastK) {
    const int pw = pow2_at_least(e);
    forward_sorted<T><<<rows_grid, kRowThreads, pw * sizeof(uint64_t), stream>>>(
        x, p.logits_stride, w, idx, p.rows, e, k, a.renormalize, pw);
    return cuda::launch_status(kOp);
  }
  const FastShape s = fast_shape<T>(p.e, p.k, cuda::vector_width<T>(p.e, {{x, p.logits_stride}}));
  return with_fast_shape<T>(s, [&]<int V, int I, int G, int W>() {
    const auto kernel = &forward_fast<T, V, I, G, W>;
    const int threads = W > 1 ? 32 * W : kGroupThreads;
    const int rows_per_block = W > 1 ? 1 : kGroupThreads / G;
    unsigned grid = 0;
    XPU_RETURN_IF_ERROR(persistent_grid(reinterpret_cast<const void*>(kernel), threads,
                                        (p.rows + rows_per_block - 1) / rows_per_block, &grid));
    kernel<<<grid, threads, 0, stream>>>(x, p.logits_stride, w, idx, p.rows, e, k, a.renormalize);
    return cuda::launch_status(kOp);
  });
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const BackwardIn<T> in{a.dweights.as<float>(), p.dweights_stride, a.logits.as<T>(),
                         p.logits_stride,        a.indices.as<int32_t>(), p.indices_stride,
                         a.weights.as<float>(), p.weights_stride, a.dlogits.as<T>(),
                         p.rows, static_cast<int>(p.e), static_cast<int>(p.k), a.renormalize};
  if (ctx.policy == Policy::kReference) {
    backward_reference<T><<<cuda::grid_for(p.rows), kRowThreads, 0, stream>>>(in);
    return cuda::launch_status(kOp);
  }
  // Group width from E alone (not the vector width), so that `dot` sums in one order
  // for a shape whatever the alignment. logits are read only without renormalize.
  const int group = p.e <= 64 ? 8 : p.e <= 128 ? 16 : 32;
  const int vec = cuda::vector_width<T>(
      p.e, {{a.renormalize ? nullptr : in.x, p.logits_stride}, {in.dx, p.e}});
  const int64_t units = (p.rows + kGroupThreads / group - 1) / (kGroupThreads / group);
  auto launch = [&]<int V, int G>() {
    const auto kernel = &backward_rows<T, V, G>;
    unsigned grid = 0;
    XPU_RETURN_IF_ERROR(
        persistent_grid(reinterpret_cast<const void*>(kernel), kGroupThreads, units, &grid));
    kernel<<<grid, kGroupThreads, 0, stream>>>(in);
    return cuda::launch_status(kOp);
  };
  constexpr int kVec = 16 / sizeof(T);
  auto by_group = [&]<int V>() {
    if (group == 8) return launch.template operator()<V, 8>();
    if (group == 16) return launch.template operator()<V, 16>();
    return launch.template operator()<V, 32>();
  };
  return vec == 1 ? by_group.template operator()<1>() : by_group.template operator()<kVec>();
}

template Status forward<float>(const ForwardProblem&, const ExecContext&);
template Status forward<__half>(const ForwardProblem&, const ExecContext&);
template Status forward<__nv_bfloat16>(const ForwardProblem&, const ExecContext&);
template Status backward<float>(const BackwardProblem&, const ExecContext&);
template Status backward<__half>(const BackwardProblem&, const ExecContext&);
template Status backward<__nv_bfloat16>(const BackwardProblem&, const ExecContext&);

}  // namespace xpu::ops::topk_softmax_detail::gpu

namespace xpu::ops::topk_softmax_detail {

void register_cuda(Registry& r) {
  // Exact selection and fixed-order sums, no atomics on floats: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, "topk_softmax", DeviceKind::kCUDA,
      []<typename T>() { return std::pair{&gpu::forward<T>, &gpu::backward<T>}; });
}

}  // namespace xpu::ops::topk_softmax_detail
