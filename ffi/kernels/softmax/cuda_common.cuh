// Shared by the softmax CUDA files (forward and registration in cuda.cu,
// backward in cuda_backward.cu): names, register budgets, the (max, sum)
// reduction, the row walk, and the launch of a resident kernel (one warp, CTA or
// cluster a row, as many as there are rows).
#pragma once

#include <algorithm>
#include <climits>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cta_row.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"
#include "kernels/softmax/softmax_kernels.h"

namespace xpu::ops::softmax_detail::gpu {

inline constexpr const char* kOp = "softmax";
inline constexpr float kLog2e = 1.4426950408889634f;
// 512 threads a block leave each thread up to 128 registers.
inline constexpr int kMaxThreads = 512;
// Short rows: one warp per row, kWarpRows rows a block, at most kWarpItems
// vectors a lane.
inline constexpr int kWarpRows = 4, kWarpItems = 4;
// 32-bit registers one thread spends on one copy of its part of a row, per
// tensor (forward: x; backward: y and dy). Every resident kernel also holds the
// next row (prefetch). The shape rule first tries kRowRegs: a row of up to 8
// CTAs' worth at that budget keeps the block at 32-40 registers a thread
// forward and 40-64 backward (3-4 and 2-3 blocks of 512 threads an SM); rows
// longer than that take kLongRowRegs (2 and 1 blocks an SM) before they fall
// back to the looped kernels. ptxas -v, sm_90: docs/kernels/softmax.md.
inline constexpr int kRowRegs = 8, kLongRowRegs = 16;
// The one-CTA-a-row forward (forward_cta, cta_row.cuh): elements a thread with
// the exponentials kept in f32 (16: 32 registers, ptxas -v, sm_90); longer rows
// are held packed (cta_row.cuh's kPackedItems).
inline constexpr int kCtaKeepElems = 16;

// Registers that ITEMS vectors of VEC elements of T take: 16-byte vectors 4,
// a scalar 16- or 32-bit element one.
template <typename T, int VEC, int ITEMS>
inline constexpr int kVecRegs = ITEMS * ((VEC * int(sizeof(T)) + 3) / 4);

// Blocks of 512 threads an SM that a resident kernel asks ptxas to allow
// (__launch_bounds__), from the registers its row data takes (both copies of
// every tensor): the most that compile without spills (ptxas -v, sm_90; table
// in docs/kernels/softmax.md). Scalar rows address every element on its own,
// and the warp-per-row kernels of 16-bit types need more temporaries: their
// data counts double. At 16 registers of data, f32 rows fit 32 registers a
// thread, bf16/f16 (conversions) 40.
template <typename T, int VEC, bool WARP>
constexpr int min_blocks(int data_regs) {
  const int d = (VEC == 1 || (WARP && sizeof(T) < 4)) ? 2 * data_regs : data_regs;
  if (d <= 8) return 4;                         // 32 registers a thread
  if (d <= 16) return sizeof(T) == 4 ? 4 : 3;   // 32 or 40
  if (d <= 32) return 2;                        // 64
  return 1;                                     // 128
}

// The register cap of a resident kernel (__launch_bounds__'s blocks an SM). The
// register walks hold two copies of the row (current and next) of `tensors`
// tensors (walk_rows; the next row is loaded only where a grid of kMaxGrid walks
// more rows than it has groups).
template <typename T, int VEC, int ITEMS, bool WARP>
constexpr int resident_min_blocks(int tensors) {
  return min_blocks<T, VEC, WARP>(2 * tensors * kVecRegs<T, VEC, ITEMS>);
}

// Elements a thread may hold within `regs` registers at vector width `vec`
// (host side, for the shape rules).
inline int elems_for_regs(int regs, int vec) { return vec == 1 ? regs : regs / 4 * vec; }


// ---- device: the (max, sum) pair ------------------------------------------------------------

// (m, s) describes a set of values v: m = max v, s = sum exp2(v - m). Merging two
// sets rescales both sums to the larger max. A max of -inf (an empty or fully
// masked set, s = 0) rescales against 0 so that -inf - -inf never makes a NaN;
// a NaN value reaches s and so the row's result.
struct MaxSum {
  __device__ __forceinline__ float2 operator()(float2 a, float2 b) const {
    const float m = fmaxf(a.x, b.x);
    const float base = m == -INFINITY ? 0.f : m;
    return make_float2(m, a.y * exp2f(a.x - base) + b.y * exp2f(b.x - base));
  }
};

// Merges the warps' pairs (`w`, equal across each warp) over the block in warp
// order; every thread gets the same bits. `scratch` holds 32 float2; the
// trailing barrier lets callers reuse it at once.
__device__ __forceinline__ float2 block_max_sum(float2 w, float2* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  if (lane == 0) scratch[warp] = w;
  __syncthreads();
  const float2 v = lane < warps ? scratch[lane] : make_float2(-INFINITY, 0.f);
  const float m = cuda::warp_max(v.x);
  const float s = cuda::warp_sum(v.y * exp2f(v.x - (m == -INFINITY ? 0.f : m)));
  __syncthreads();
  return make_float2(m, s);
}

// opaque (a held row treated as changed, so values derived from it are
// recomputed, not kept live): cta_row.cuh.
using cuda::opaque;

// The row walk (one row ahead in registers): cuda::walk_rows, kernels/common/resident_row.cuh.
using cuda::walk_rows;

// ---- host -----------------------------------------------------------------------------------

// How a resident kernel covers the rows: `groups` row groups (a warp, a CTA or
// a cluster of CTAs) each walk rows g, g + groups, ...
struct ResidentLaunch {
  const void* kernel = nullptr;
  int threads = 0, cluster = 1, slice = 0;
  int rows_per_block = 1;  // kWarpRows on the warp-per-row path
};

// Blocks for `l`: one row group (warp rows, CTA or cluster) a row, as many as there
// are rows up to kMaxGrid (the kernels walk more rows grid-stride). A persistent
// grid of only the resident groups (run 12) was 10-20% slower on the H200 (run 13,
// docs/kernels/softmax.md). 0 when the kernel cannot be resident at all (a cluster
// that does not fit): the caller falls back.
inline Status row_blocks(const ResidentLaunch& l, int64_t rows, int64_t* blocks) {
  int resident = 0;
  XPU_RETURN_IF_ERROR(cuda::resident_count(l.kernel, l.threads, l.cluster, &resident));
  if (resident <= 0) {
    *blocks = 0;
    return Status::Ok();
  }
  const int64_t units = (rows + l.rows_per_block - 1) / l.rows_per_block;
  *blocks = std::min<int64_t>(units, cuda::kMaxGrid / l.cluster) * l.cluster;
  return Status::Ok();
}

// Where a row of n elements goes: one warp per row (warp.items > 0), else one
// CTA or a cluster of CTAs (split.cluster > 0), else nowhere (looped kernels).
// The smaller register budget first: it gives more blocks an SM.
struct RowPlan {
  cuda::RowShape warp{0, 0};
  cuda::SplitShape split{0, 0, 0, 0};
};

inline RowPlan row_plan(int64_t n, int vec, int max_cluster) {
  RowPlan plan;
  plan.warp = cuda::resident_shape(n, vec, elems_for_regs(kRowRegs, vec), 32, kWarpItems);
  if (plan.warp.items > 0) return plan;
  for (int regs : {kRowRegs, kLongRowRegs}) {
    plan.split = cuda::split_shape(n, vec, elems_for_regs(regs, vec), kMaxThreads, max_cluster,
                                   cuda::kPreferItems);
    if (plan.split.cluster > 0) break;
  }
  return plan;
}

// 16-byte rows too long for a warp (forward_cta, forward_staged, backward_staged):
// one CTA a row where it holds kCtaKeepElems a thread (exponentials kept) or a packed
// row, else a cluster of packed CTAs (cluster 0: none fits, the resident or looped
// kernels take the row).
inline cuda::SplitShape cta_row_shape(int64_t n, int vec, int max_cluster) {
  const cuda::RowShape c =
      cuda::cta_shape(n, vec, kCtaKeepElems, kCtaKeepElems / vec, cuda::kWideThreads);
  return c.items > 0 ? cuda::SplitShape{1, c.items, c.threads, 0}
                     : cuda::cta_split(n, vec, max_cluster);
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx);
template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx);

// cluster: the row is split over more than one CTA (a kernel may take a form for it).
template <int V, int I, bool WARP>
struct ResidentTag {
  bool cluster;
};

// The resident kernel for a row shape (row_plan), and its grid (row_blocks):
// `make(ResidentTag<V, I, WARP>)` returns the kernel instantiation (forward or
// backward). Leaves *blocks == 0 when no resident kernel fits (the caller then
// takes the looped fallback).
template <typename T, typename Kernel, typename Make>
Status plan_resident(int64_t n, int vec, int64_t rows, Make make, Kernel* kernel,
                     ResidentLaunch* l, int64_t* blocks) {
  constexpr int kVec = 16 / sizeof(T);
  *kernel = nullptr;
  *blocks = 0;
  int max_cluster = 1;
  XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
  const RowPlan plan = row_plan(n, vec, max_cluster);
  // Only (vector width, items) pairs that row_plan can return are compiled.
  auto pick = [&]<bool WARP>(int items) {
    cuda::with_vec_items<kVec, 16 * kVec, 16>(vec, items, [&]<int V, int I>() {
      constexpr int kBudget = WARP ? kRowRegs : kLongRowRegs;
      if constexpr (kVecRegs<T, V, I> <= kBudget && (!WARP || I <= kWarpItems))
        *kernel = make(ResidentTag<V, I, WARP>{!WARP && plan.split.cluster > 1});
    });
  };
  if (plan.warp.items > 0) {
    pick.template operator()<true>(plan.warp.items);
    l->threads = 32 * kWarpRows;
    l->rows_per_block = kWarpRows;
  } else if (plan.split.cluster > 0) {
    pick.template operator()<false>(plan.split.items);
    l->threads = plan.split.threads;
    l->cluster = plan.split.cluster;
    l->slice = plan.split.slice;
  }
  if (!*kernel) return Status::Ok();
  l->kernel = reinterpret_cast<const void*>(*kernel);
  return row_blocks(*l, rows, blocks);
}

}  // namespace xpu::ops::softmax_detail::gpu
