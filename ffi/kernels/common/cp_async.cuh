// 16-byte global -> shared copies that bypass registers (cp.async, sm_80+). Rows a
// kernel reads ahead wait in shared memory, not in registers, so the bytes in
// flight cost no occupancy. Each thread waits only for its own copies
// (wait_group), so a ring whose slots a thread alone fills and reads needs no
// block barrier.
#pragma once

namespace xpu::cuda {

__device__ __forceinline__ void copy16_async(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}

// Closes this thread's current group of copies.
__device__ __forceinline__ void copy_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most N of this thread's committed groups are still pending.
template <int N>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// copy_wait<n> for a run-time n (wait_group takes an immediate): 0 <= n < 8.
__device__ __forceinline__ void copy_wait_n(int n) {
  switch (n) {
    case 0: copy_wait<0>(); break;
    case 1: copy_wait<1>(); break;
    case 2: copy_wait<2>(); break;
    case 3: copy_wait<3>(); break;
    case 4: copy_wait<4>(); break;
    case 5: copy_wait<5>(); break;
    case 6: copy_wait<6>(); break;
    default: copy_wait<7>(); break;
  }
}

}  // namespace xpu::cuda
