// Host-side launch choices shared by the row-wise CUDA kernels (softmax, glu):
// 16-byte vector eligibility, how many elements a thread holds in registers,
// grid limits, and the compile-time dispatch over (vector width, items).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "kernels/common/cuda_utils.cuh"
#include "xpuruntime/status.h"

namespace xpu::cuda {

// Largest grid.x any row kernel launches; kernels loop over the rest (grid-stride),
// so no shape can exceed the hardware limit (2^31 - 1) or overflow an unsigned.
inline constexpr int64_t kMaxGrid = int64_t{1} << 20;

// Column indices are int inside the kernels, with headroom for col += threads * VEC:
// longer rows are refused with an error naming the op (`what`: "elements", "classes").
inline Status check_row_length(const char* op, int64_t n, const char* what) {
  if (n > INT32_MAX / 2)
    return InvalidArgument(op, ": rows of ", n, " ", what, " are too long for the CUDA kernels");
  return Status::Ok();
}

inline unsigned grid_for(int64_t blocks) {
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid));
}

// 16 / sizeof(T) when every (pointer, row stride) pair allows 16-byte accesses at
// each row start (null pointers are skipped), else 1. Says nothing about the row length.
template <typename T>
int aligned_width(std::initializer_list<std::pair<const void*, int64_t>> rows) {
  constexpr int kVec = 16 / sizeof(T);
  for (auto [ptr, stride] : rows)
    if (ptr && (!aligned16(ptr) || stride % kVec)) return 1;
  return kVec;
}

// As aligned_width, and also 1 unless rows of length n split into whole vectors.
template <typename T>
int vector_width(int64_t n, std::initializer_list<std::pair<const void*, int64_t>> rows) {
  constexpr int kVec = 16 / sizeof(T);
  if (n % kVec) return 1;
  return aligned_width<T>(rows);
}

struct RowShape {
  int items;    // vectors held per thread (0: the row does not fit, loop instead)
  int threads;  // threads per row, a multiple of 32
};

// Vectors a thread of a one-row-a-CTA register kernel holds by preference. H200
// run 13 (benchmarks/row_variants.py, docs/kernels/README.md): rms_norm 32768x4096
// bf16 at 1 vector a thread (512 threads a row) 0.147 ms, at 2-8 vectors 0.133-0.135
// (Liger 0.130): fewer threads a row pay fewer shuffles, barriers and per-row
// instructions for the same bytes.
inline constexpr int kPreferItems = 4;

// Fewest vectors per thread (a power of two, at most max_items), from
// prefer_items up while a full warp still has work, that fit a row of n elements
// in at most max_threads threads holding at most max_elems elements each.
inline RowShape resident_shape(int64_t n, int vec, int max_elems, int max_threads,
                               int max_items = 16, int prefer_items = 1) {
  const int64_t nvec = (n + vec - 1) / vec;
  int items = 1;
  while (items * 2 <= prefer_items && items * 2 <= max_items && items * 2 * vec <= max_elems &&
         int64_t{items} * 2 * 32 <= nvec)
    items *= 2;
  for (; items * vec <= max_elems && items <= max_items; items *= 2) {
    const int64_t threads = (nvec + items - 1) / items;
    if (threads <= max_threads)
      return {items, static_cast<int>(std::max<int64_t>(32, (threads + 31) / 32 * 32))};
  }
  return {0, 0};
}

// Threads for a row walked in a loop: enough for one pass of vectors, at most max_threads.
inline int looped_threads(int64_t n, int vec, int max_threads) {
  const int64_t nvec = (n + vec - 1) / vec;
  return static_cast<int>(
      std::min<int64_t>(max_threads, std::max<int64_t>(32, (nvec + 31) / 32 * 32)));
}

// Runs body.template operator()<V, I>() for runtime (vec, items), vec in {1, VMAX},
// items in {1, 2, 4, 8, 16}. Only pairs with V * I <= MAXE and I <= MAXI are
// instantiated; callers pass only (vec, items) that resident_shape returned with
// the same limits.
template <int VMAX, int MAXE, int MAXI, typename Body>
void with_vec_items(int vec, int items, Body&& body) {
  auto by_items = [&](auto vtag) {
    constexpr int V = decltype(vtag)::value;
    auto run = [&](auto itag) {
      constexpr int I = decltype(itag)::value;
      if constexpr (V * I <= MAXE && I <= MAXI) body.template operator()<V, I>();
    };
    switch (items) {
      case 1: run(std::integral_constant<int, 1>{}); break;
      case 2: run(std::integral_constant<int, 2>{}); break;
      case 4: run(std::integral_constant<int, 4>{}); break;
      case 8: run(std::integral_constant<int, 8>{}); break;
      default: run(std::integral_constant<int, 16>{}); break;
    }
  };
  if (vec == 1) by_items(std::integral_constant<int, 1>{});
  else by_items(std::integral_constant<int, VMAX>{});
}

}  // namespace xpu::cuda
