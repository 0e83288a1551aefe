// Rows streamed through a shared-memory ring: how the row kernels (rms_norm,
// layer_norm, softmax; forward and backward) keep a device's bandwidth-latency
// product in flight without holding it in registers.
// Device: pipe_rows (a persistent row walk whose next rows wait in a cp.async ring;
// RowSources / RowVecs of resident_row.cuh). Host: plan_row_pipe (ring depth and grid from
// the device's memory bandwidth, SM count and shared memory) and launch_row_pipe.
#pragma once

#include <cstdint>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cp_async.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/common/resident_row.cuh"
#include "xpuruntime/status.h"

namespace xpu::cuda {

// Deepest ring: copy_wait_n's range (wait_group takes an immediate).
inline constexpr int kMaxPipeStages = 8;

// ---- device --------------------------------------------------------------------------------

// Calls body(row, const RowVecs& r, parity) for rows first, first + step, ... <
// rows, as walk_rows does, but the `stages - 1` rows after the current one are
// already being copied into a ring in dynamic shared memory (cp.async, 16 bytes a
// thread, vector and tensor), so the bytes in flight cost no registers and keep
// flowing through the body's barriers. Each thread copies and reads only its own
// slots (consecutive threads, consecutive 16-byte words: no bank conflicts), so its
// own wait_group orders them and the ring needs no barrier of its own; a stage is
// refilled one row after this thread read it. The dynamic shared memory is
// stages * NT * ITEMS * blockDim.x * 16 bytes (plan_row_pipe). 2 <= stages <= 8.
template <typename T, int VEC, int ITEMS, int NT, typename Body>
__device__ __forceinline__ void pipe_rows(const RowSources<T, NT>& src, int64_t first,
                                          int64_t rows, int64_t step, RowSlice s, int n,
                                          int stages, Body&& body) {
  static_assert(sizeof(T) * VEC == 16, "pipe_rows copies 16-byte vectors");
  using V = Vec<T, VEC>;
  extern __shared__ __align__(16) unsigned char row_pipe_ring[];
  V* const ring = reinterpret_cast<V*>(row_pipe_ring);
  const int threads = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  auto at = [&](int stage, int t, int k) {
    return ring + ((stage * NT + t) * ITEMS + k) * threads + tid;
  };
  // Copies row `row` (if any) into `stage`; always commits one group, so that the
  // wait below counts rows.
  auto issue = [&](int64_t row, int stage) {
    if (row < rows) {
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        const int col = s.col(k);
        if (col < n) {
#pragma unroll
          for (int t = 0; t < NT; ++t)
            copy16_async(at(stage, t, k), src.ptr[t] + row * src.stride[t] + col);
        }
      }
    }
    copy_commit();
  };
#pragma unroll 1
  for (int i = 0; i + 1 < stages; ++i) issue(first + i * step, i);
  int stage = 0, parity = 0;
#pragma unroll 1
  for (int64_t row = first; row < rows; row += step, parity ^= 1) {
    issue(row + (stages - 1) * step, stage == 0 ? stages - 1 : stage - 1);  // the stage read last
    copy_wait_n(stages - 1);  // this row's group has landed
    RowVecs<T, VEC, ITEMS, NT> r;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      if (s.col(k) < n) {
#pragma unroll
        for (int t = 0; t < NT; ++t) r.v[t][k] = *at(stage, t, k);
      }
    }
    body(row, r, parity);
    stage = stage + 1 == stages ? 0 : stage + 1;
  }
  copy_wait<0>();  // only empty groups remain; nothing may be in flight at exit
}

// ---- host ----------------------------------------------------------------------------------

// A persistent grid of `groups` row groups (CTAs, or clusters of CTAs), each CTA
// with a ring of `stages` rows in `smem` bytes of dynamic shared memory.
struct PipePlan {
  int stages = 0;  // 0: no ring fits; the caller takes its register path
  int smem = 0;
  int64_t groups = 0;
};

// The ring and grid for `kernel` at `threads` threads a CTA and `cluster` CTAs a row
// group, one ring stage being `stage_bytes` (a CTA's slices of one row of every
// streamed tensor). From the device (cached per device): the bytes to keep in
// flight per SM by Little's law, its read bandwidth (half the peak of reads plus
// writes, from the memory clock and bus width) times kPipeCoverNs over the SM
// count; then the most CTAs an SM that registers allow whose rings, each as few
// stages as reach that target together, fit the SM's shared memory (the deepest
// that fit where none reach it); groups = row groups resident at once (no second
// wave), then as few as walk the same number of rounds, at most `rows`. Depends
// only on the device and the shape, so a kernel's
// row -> group map (and any per-group partial sums) is reproducible.
// XPURUNTIME_ROW_INFLIGHT_KB (bytes in flight an SM) and XPURUNTIME_ROW_CTAS (most
// CTAs an SM) override the target, for measurements.
Status plan_row_pipe(const void* kernel, int threads, int cluster, int stage_bytes, int64_t rows,
                     PipePlan* plan);

// Latency that the bytes in flight cover: about twice the loaded DRAM latency of
// an H100 or H200 (~1-2 us), so that the rings also ride out each row's reduction.
inline constexpr double kPipeCoverNs = 4000.0;

// The pipelined kernels' split rule: the fewest CTAs (<= max_cluster) whose slices
// fit 512 threads at kPipeItems 16-byte vectors a thread, then the fewest threads
// (the most vectors a thread, down to what keeps a warp busy) for that slice. The
// per-row work that does not scale with the row (the block reduction's shuffles
// and barrier, the row loop, addressing) is paid by every warp of the row, so fewer
// warps a row cost fewer instructions: H200 run 11 held 512 threads x 1 vector at
// 4096 bf16 columns and stayed at 78% of copy whatever the ring depth, while
// Liger's 8 warps x 16 elements reached 96%. (bf16: 4096 columns one CTA of 128 x 4
// vectors, 8192 256 x 4, 65536 clusters of 4 x 512 x 4.) `max_items` (1, 2 or 4):
// a kernel's own limit; XPURUNTIME_ROW_ITEMS lowers it, for measurements.
inline constexpr int kPipeItems = 4;
SplitShape pipe_split(int64_t n, int vec, int max_cluster, int max_items = kPipeItems);

// Plans (plan_row_pipe) and launches a pipelined kernel over split `s` streaming
// `tensors` tensors, at most `max_groups` row groups; the kernel's last parameter
// is the ring depth, appended to `args`. *groups: the row groups launched, 0 when
// no ring fits and nothing was launched (the caller takes its register path).
template <typename... P, typename... A>
Status launch_pipelined(void (*kernel)(P...), const SplitShape& s, int tensors, int64_t max_groups,
                        cudaStream_t stream, const char* op, int64_t* groups, A&&... args) {
  *groups = 0;
  PipePlan plan;
  XPU_RETURN_IF_ERROR(plan_row_pipe(reinterpret_cast<const void*>(kernel), s.threads, s.cluster,
                                    tensors * s.items * s.threads * 16, max_groups, &plan));
  if (plan.stages == 0) return Status::Ok();
  XPU_RETURN_IF_ERROR(cuda_status(
      launch_clustered_smem(kernel, static_cast<unsigned>(plan.groups * s.cluster), s.threads,
                            s.cluster, plan.smem, stream, static_cast<A&&>(args)..., plan.stages),
      op, "pipelined launch"));
  *groups = plan.groups;
  return Status::Ok();
}

}  // namespace xpu::cuda
