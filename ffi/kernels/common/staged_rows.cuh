// Rows of NT tensors staged through a shared-memory ring by TMA bulk copies, for the
// persistent walks that read each row once and reduce over it (the fused norm backward).
// Thread 0 keeps stages - 1 rows ahead in flight, one mbarrier a stage, so the bytes in
// flight cost shared memory instead of registers: the register walk (walk_rows, one row
// ahead at 128 registers a thread) kept ~32 KB in flight an SM, about what 4.25 TB/s
// needs at ~1 us latency, and lost bandwidth at every stall (H200 run 17a,
// docs/kernels/README.md: rms_norm backward 32768x4096 bf16 0.2085 ms register walk,
// 0.2059 staged; 8192x8192 0.1130 and 0.1092; the library's register walk 0.2586 and
// 0.1560).
// Rows are 16-byte aligned and a multiple of 16 bytes (cp.async.bulk); each tensor's row
// takes a slot of slot_bytes(n) in a stage.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/resident_row.cuh"

namespace xpu::cuda {

// Stages a ring may have (its mbarriers are declared for this many).
inline constexpr int kMaxRingStages = 4;

// The stages (2 .. kMaxRingStages) that keep at least `ahead_bytes` in flight an SM with
// `per_sm` CTAs of `row_bytes` a row (all tensors), at most `smem_per_sm` bytes of
// shared memory an SM: the current row and stages - 1 ahead in each CTA.
inline int ring_stages(int per_sm, int64_t row_bytes, int64_t ahead_bytes, int64_t smem_per_sm) {
  int stages = 2;
  while (stages < kMaxRingStages && int64_t{per_sm} * (stages - 1) * row_bytes < ahead_bytes &&
         int64_t{per_sm} * (stages + 1) * row_bytes <= smem_per_sm)
    ++stages;
  return stages;
}

// A persistent walk's rows for group `group` of `groups`: a contiguous chunk (so the
// norm backward's partials sum rows in order, and a ring streams consecutive rows).
struct RowChunk {
  int64_t first, last;
};
__device__ __forceinline__ RowChunk row_chunk(int64_t group, int64_t groups, int64_t rows) {
  const int64_t per = (rows + groups - 1) / groups;
  const int64_t first = group * per;
  return {first, first + per < rows ? first + per : rows};
}

template <typename T, int NT>
class StagedRows {
 public:
  // A tensor's row in a stage, padded to 128 bytes.
  __host__ __device__ static constexpr int slot_bytes(int n) {
    return (n * static_cast<int>(sizeof(T)) + 127) / 128 * 128;
  }
  // The ring's dynamic shared memory.
  __host__ __device__ static constexpr int smem_bytes(int n, int stages) {
    return stages * NT * slot_bytes(n);
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Every thread, at kernel start: thread 0 initialises the mbarriers (one barrier for
  // the CTA makes them visible) and issues rows first .. first + stages - 1 (< last).
  // smem: smem_bytes(n, stages) of dynamic shared memory.
  __device__ __forceinline__ StagedRows(unsigned char* smem, uint64_t (&bars)[kMaxRingStages],
                                        int stages, const RowSources<T, NT>& src, int n,
                                        int64_t first, int64_t last)
      : smem_(smem), bars_(bars), src_(src), first_(first), last_(last),
        bytes_(static_cast<uint32_t>(n) * sizeof(T)), slot_(slot_bytes(n)), stages_(stages) {
    if (threadIdx.x == 0) {
      for (int s = 0; s < stages_; ++s) mbar::init(&bars_[s], 1);
      mbar::fence_init();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int s = 0; s < stages_; ++s)
        if (first_ + s < last_) issue(first_ + s, s);
    }
  }

  // The walk's cursor is the next row in order, first .. last - 1: its stage and phase
  // advance by one row at each next() (no division by the runtime stage count).
  // Waits until the cursor's row has landed.
  __device__ __forceinline__ void wait() const {
    mbar::wait(mbar::smem(&bars_[stage_]), phase_);
  }
  // Tensor t's slice of the cursor's row in shared memory (after wait()).
  __device__ __forceinline__ const T* row(int t) const {
    return reinterpret_cast<const T*>(smem_ + (stage_ * NT + t) * slot_);
  }
  // Every thread, once no thread reads the row before the cursor's (`row`, past a CTA
  // barrier that follows every thread's last read of it): thread 0 refills that row's
  // stage with row + stages.
  __device__ __forceinline__ void release_previous(int64_t row) {
    if (threadIdx.x == 0 && row >= first_ && row + stages_ < last_)
      issue(row + stages_, stage_ == 0 ? stages_ - 1 : stage_ - 1);
  }
  // Moves the cursor to the next row.
  __device__ __forceinline__ void next() {
    if (++stage_ == stages_) {
      stage_ = 0;
      phase_ ^= 1u;
    }
  }

 private:
  __device__ __forceinline__ void issue(int64_t row, int s) {
    const uint32_t bar = mbar::smem(&bars_[s]);
    mbar::arrive_expect_tx(bar, NT * bytes_);
    if (bytes_ == 0) return;  // an empty slice: the arrival completes the phase
#pragma unroll
    for (int t = 0; t < NT; ++t)
      mbar::bulk_load(mbar::smem(smem_ + (s * NT + t) * slot_), src_.ptr[t] + row * src_.stride[t],
                      bytes_, bar);
  }

  unsigned char* smem_;
  uint64_t (&bars_)[kMaxRingStages];
  const RowSources<T, NT>& src_;
  int64_t first_, last_;
  uint32_t bytes_;
  int slot_, stages_;
  int stage_ = 0;
  uint32_t phase_ = 0;
#endif
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// Row `row`'s slices of NT tensors, columns [begin, min(begin + slice, n)), staged in
// this CTA's dynamic shared memory (StagedRows<T, NT>::smem_bytes(slice, 1) bytes) by
// one TMA bulk copy each; every thread calls it, and it returns once they have landed,
// with at[t] indexing tensor t's slice by the row's column (at[t][col]). For the kernels
// that hold one slice of a row split over a cluster (softmax's forward_staged and backward_staged):
// the row in flight costs shared memory instead of registers, so more of them are in
// flight an SM (softmax 4096x65536 bf16 forward, H200 run 17a: 0.2636 ms staged, 0.3117
// in registers).
template <typename T, int NT>
__device__ __forceinline__ void stage_row_slice(const RowSources<T, NT>& src, int64_t row,
                                                int begin, int slice, int n,
                                                const T* (&at)[NT]) {
  extern __shared__ __align__(128) unsigned char staged_slice_smem[];
  __shared__ alignas(8) uint64_t staged_slice_bar[kMaxRingStages];
  RowSources<T, NT> from = src;
#pragma unroll
  for (int t = 0; t < NT; ++t) from.ptr[t] += begin;
  StagedRows<T, NT> staged(staged_slice_smem, staged_slice_bar, 1, from,
                           max(0, min(n - begin, slice)), row, row + 1);
  staged.wait();
#pragma unroll
  for (int t = 0; t < NT; ++t) at[t] = staged.row(t) - begin;
}
#endif

}  // namespace xpu::cuda
