// Device-side helpers shared by the CUDA kernels: dtype mapping, 16-byte vector
// access, f32 conversion and block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "xpuruntime/dtype.h"
#include "xpuruntime/status.h"

namespace xpu::cuda {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// N elements moved as one access (16 bytes when N * sizeof(T) == 16).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <typename T, int N>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}
// One st.global of 8 or 16 bytes at p (aligned to that size). Written in PTX
// because a plain 16-byte store through a uint4* was split into 4 (or, storing the
// Vec as a struct, 8) narrower stores whenever the address came from a loop nest
// (nvcc 13.0 -O3, seen in the PTX of rope and cross_entropy's backward: 8 two-byte
// stores per thread, 8x the store instructions and partial-sector writes; rope bf16
// ran at 34% of copy). "memory": the compiler must not move other accesses across it.
__device__ __forceinline__ void st_global_words(void* p, const uint32_t* w, int words) {
  const size_t g = __cvta_generic_to_global(p);
  if (words == 4)
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(g), "r"(w[0]), "r"(w[1]),
                 "r"(w[2]), "r"(w[3])
                 : "memory");
  else
    asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(g), "r"(w[0]), "r"(w[1]) : "memory");
}

__device__ __forceinline__ uint32_t bits16(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ uint32_t bits16(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }

// The Vec as 32-bit words (2-byte elements packed in pairs, low element first, as
// in memory), stored 16 bytes at a time; Vecs of 4 bytes or less are plain stores.
template <typename T, int N>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, N>& v) {
  constexpr int kWords = static_cast<int>(sizeof(T)) * N / 4;
  static_assert(kWords <= 2 || kWords % 4 == 0, "store_vec: 2, 4, 8 or 16k bytes");
  if constexpr (sizeof(T) * N <= 4) {
    *reinterpret_cast<Vec<T, N>*>(p) = v;  // one element or a pair: nothing to split
  } else {
    uint32_t w[kWords];
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
      if constexpr (sizeof(T) == 4) w[i] = __float_as_uint(v.v[i]);
      else w[i] = bits16(v.v[2 * i]) | (bits16(v.v[2 * i + 1]) << 16);
    }
#pragma unroll
    for (int i = 0; i < (kWords + 3) / 4; ++i)
      st_global_words(reinterpret_cast<char*>(p) + 16 * i, w + 4 * i, kWords < 4 ? kWords : 4);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float2 warp_sum(float2 v) {
  return make_float2(warp_sum(v.x), warp_sum(v.y));
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block, returned to every thread, in a fixed order (deterministic).
// `scratch` holds 32 floats; the trailing barrier lets callers reuse it at once.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  v = warp_sum(v);
  __syncthreads();
  return v;
}
// Two sums over the block at once (one pair of barriers), in block_sum's fixed
// order. `scratch` holds 32 float2.
__device__ __forceinline__ float2 block_sum2(float a, float b, float2* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane == 0) scratch[warp] = make_float2(a, b);
  __syncthreads();
  const float2 v = lane < warps ? scratch[lane] : make_float2(0.f, 0.f);
  a = warp_sum(v.x);
  b = warp_sum(v.y);
  __syncthreads();
  return make_float2(a, b);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  v = warp_max(v);
  __syncthreads();
  return v;
}

// Calls f.template operator()<T>() with T the CUDA storage type of `dt`.
template <typename F>
auto dispatch_float(DType dt, F&& f) {
  switch (dt) {
    case DType::kF16: return f.template operator()<__half>();
    case DType::kBF16: return f.template operator()<__nv_bfloat16>();
    default: return f.template operator()<float>();
  }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Turns the last launch's error into a Status naming the op.
inline Status launch_status(const char* op) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::Ok();
  return Error(StatusCode::kInternal, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

}  // namespace xpu::cuda
