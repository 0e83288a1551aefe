// Shared-memory mbarriers and TMA bulk copies (sm_90 PTX): what the cluster push
// (cluster_push.cuh) and the shared-memory row ring (staged_rows.cuh) wait on.
// An mbarrier's phase completes when its expected arrivals have arrived and the bytes
// announced with expect_tx have landed; waiters test the phase's parity.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace xpu::cuda::mbar {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ uint32_t smem(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// One thread: an mbarrier expecting `count` arrivals a phase. fence_init() then makes
// the initialisation visible to the async proxy and the cluster before first use.
__device__ __forceinline__ void init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem(bar)), "r"(count));
}
__device__ __forceinline__ void fence_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// Arrives on bar (shared-memory address) and announces `bytes` more to land in this phase.
__device__ __forceinline__ void arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ bool try_wait(uint32_t bar, uint32_t phase) {
  uint32_t done;
  asm volatile(
      "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
      : "=r"(done)
      : "r"(bar), "r"(phase)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ void wait(uint32_t bar, uint32_t phase) {
  while (!try_wait(bar, phase)) {
  }
}

// `bytes` (a multiple of 16; both addresses 16-byte aligned) from global to this CTA's
// shared memory by the TMA unit, completing on bar's transaction count.
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes,
                                          uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
      ::"r"(dst), "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}

// `bytes` (a multiple of 16, 16-byte aligned) from global memory into L2 by the TMA
// unit, with nothing to wait on: warms rows a walk will load later, at no register or
// shared-memory cost.
__device__ __forceinline__ void prefetch_l2(const void* src, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(bytes) : "memory");
}
#endif

}  // namespace xpu::cuda::mbar
