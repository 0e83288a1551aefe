// Host-side launch-shape choices shared by the row-wise CUDA kernels (one block
// per row, the row held in registers as 16-byte vectors where it fits).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "kernels/common/cuda_utils.cuh"

namespace xpu::cuda {

// 512 threads a block leave each thread up to 128 registers: kernels declare
// __launch_bounds__(kMaxRowThreads) and the shapes below never exceed it.
constexpr int kMaxRowThreads = 512;

// Elements per 16-byte access when every row start is 16-byte aligned, else 1.
// `rows` lists (base pointer, row stride in elements); null pointers are skipped.
template <typename T>
int vector_width(int64_t n, std::initializer_list<std::pair<const void*, int64_t>> rows) {
  constexpr int kVec = 16 / sizeof(T);
  if (n % kVec) return 1;
  for (auto [ptr, stride] : rows)
    if (ptr && (!aligned16(ptr) || stride % kVec)) return 1;
  return kVec;
}

struct Shape {
  int items;    // vectors held per thread (0: the row does not fit, loop instead)
  int threads;
};

// Fewest vectors per thread (a power of two, at most 16) that fit the row in one
// block of at most kMaxRowThreads threads holding at most `max_elems` elements each.
inline Shape resident_shape(int64_t n, int vec, int max_elems) {
  const int64_t nvec = (n + vec - 1) / vec;
  for (int items = 1; items * vec <= max_elems && items <= 16; items *= 2) {
    const int64_t threads = (nvec + items - 1) / items;
    if (threads <= kMaxRowThreads)
      return {items, static_cast<int>(std::max<int64_t>(32, (threads + 31) / 32 * 32))};
  }
  return {0, 0};
}

// Threads for a block that loops over a row of n elements, vec at a time.
inline int looped_threads(int64_t n, int vec) {
  const int64_t nvec = (n + vec - 1) / vec;
  return static_cast<int>(
      std::min<int64_t>(kMaxRowThreads, std::max<int64_t>(32, (nvec + 31) / 32 * 32)));
}

// Runs body.template operator()<VEC, ITEMS>() for runtime (vec, items) in the supported set:
// vec is 1 or VMAX, items one of 1, 2, 4, 8, 16 (anything else runs as 16).
// Only (VEC, ITEMS) pairs with VEC * ITEMS <= MAXE are instantiated.
template <int VMAX, int MAXE, typename Body>
void with_vec_items(int vec, int items, Body&& body) {
  auto by_items = [&](auto vtag) {
    constexpr int V = decltype(vtag)::value;
    auto run = [&](auto itag) {
      constexpr int I = decltype(itag)::value;
      if constexpr (V * I <= MAXE) body.template operator()<V, I>();
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
