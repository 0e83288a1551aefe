// Launch shapes of the one-block-per-row kernels (rms_norm, layer_norm): the
// helpers of row_launch.cuh with these kernels' block limit filled in.
#pragma once

#include "kernels/common/row_launch.cuh"

namespace xpu::cuda {

// 512 threads a block leave each thread up to 128 registers: kernels declare
// __launch_bounds__(kMaxRowThreads) and the shapes below never exceed it.
constexpr int kMaxRowThreads = 512;

using Shape = RowShape;

inline Shape resident_shape(int64_t n, int vec, int max_elems) {
  return resident_shape(n, vec, max_elems, kMaxRowThreads);
}

inline int looped_threads(int64_t n, int vec) { return looped_threads(n, vec, kMaxRowThreads); }

// with_vec_items<VMAX, MAXE>: every item count up to 16.
template <int VMAX, int MAXE, typename Body>
void with_vec_items(int vec, int items, Body&& body) {
  with_vec_items<VMAX, MAXE, 16>(vec, items, static_cast<Body&&>(body));
}

}  // namespace xpu::cuda
