// A row split over a thread-block cluster, reduced without a cluster-wide barrier:
// every CTA pushes its partial into every peer's shared memory with st.async, which
// completes on the peer's mbarrier; each CTA waits on its own mbarrier and folds the
// csize values in rank order (the same bits in every CTA, no atomics). QuACK's
// Hopper reductions work this way. cluster_reduce (cluster.cuh) instead arrives on
// and waits for barrier.cluster and then reads the peers' slots: two cluster-wide
// round trips a reduction on a row's critical path.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/cluster.cuh"
#include "kernels/common/mbarrier.cuh"

namespace xpu::cuda {

// Shared memory of one ClusterPush: the peers' values of the last two reductions
// (by parity, by sender rank) and one mbarrier each.
template <typename V>
struct PushSlots {
  V value[2][kMaxCluster];
  alignas(8) uint64_t full[2];
};

// ---- PTX (sm_90) -----------------------------------------------------------------------------
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
namespace push_detail {
using mbar::smem;
__device__ __forceinline__ uint32_t peer(uint32_t addr, int rank) {
  uint32_t out;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(out) : "r"(addr), "r"(rank));
  return out;
}
__device__ __forceinline__ void store(uint32_t dst, float v, uint32_t bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];"
               :: "r"(dst), "r"(__float_as_uint(v)), "r"(bar) : "memory");
}
__device__ __forceinline__ void store(uint32_t dst, float2 v, uint32_t bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.b32 [%0], {%1, %2}, [%3];"
               :: "r"(dst), "r"(__float_as_uint(v.x)), "r"(__float_as_uint(v.y)), "r"(bar)
               : "memory");
}
using mbar::try_wait;
}  // namespace push_detail
#endif

template <bool CLUSTER, typename V>
class ClusterPush;

// One CTA a row: the CTA's value is the row's.
template <typename V>
class ClusterPush<false, V> {
 public:
  __device__ __forceinline__ ClusterPush(PushSlots<V>&, int) {}
  template <typename Op>
  __device__ __forceinline__ V reduce(V v, int, Op) {
    return v;
  }
  __device__ __forceinline__ void send(V, int) {}
  template <typename Op>
  __device__ __forceinline__ V receive(V v, int, Op) {
    return v;
  }
  __device__ __forceinline__ void finish() {}
};

// Constructed by every thread of every CTA of the cluster at kernel start (it
// initialises the mbarriers and arrives on the cluster barrier; the first reduce
// waits on it, so the row's loads overlap that round trip). reduce(v, parity, op):
// v is the CTA's value (equal in all its threads); successive reductions alternate
// parity. A peer can be at most one reduction ahead (it needs this CTA's value to
// finish each), so the other parity's mbarrier and slots take its early value
// without disturbing this one. No barrier is needed at exit: a CTA only receives
// after it has waited for every peer, and it waits for each value it is sent; a
// kernel that may reduce nothing (a persistent walk's rowless group) calls
// finish() before it exits.
template <typename V>
class ClusterPush<true, V> {
 public:
  __device__ __forceinline__ ClusterPush(PushSlots<V>& s, int csize)
      : s_(s), csize_(csize), rank_(cluster_rank(csize)) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (csize_ > 1) {
      if (threadIdx.x == 0) {
        for (int p = 0; p < 2; ++p) mbar::init(&s_.full[p], 1);
        mbar::fence_init();
      }
      asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    }
#endif
  }

  template <typename Op>
  __device__ __forceinline__ V reduce(V v, int parity, Op op) {
    send(v, parity);
    return receive(v, parity, op);
  }

  // reduce in two halves, so that a caller can issue work between its push and its wait
  // (the staged norm backward refills its ring there). send: pushes this CTA's value to
  // every peer; receive: waits for all of them and folds them (v unused: the CTA's own
  // value was pushed to itself).
  __device__ __forceinline__ void send(V v, int parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (csize_ > 1) {
      using namespace push_detail;
      if (!ready_) {  // the peers' mbarriers are initialised
        asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
        ready_ = true;
      }
      const uint32_t bar = smem(&s_.full[parity]);
      // The CTA's reads of this parity's values two reductions ago are done before
      // a peer can overwrite them: blocks of more than one warp passed cta_reduce's
      // barrier since; a one-warp block converges here.
      __syncwarp();
      const int to = static_cast<int>(threadIdx.x);
      if (to < csize_) store(peer(smem(&s_.value[parity][rank_]), to), v, peer(bar, to));
      if (threadIdx.x == 0) mbar::arrive_expect_tx(bar, static_cast<uint32_t>(csize_ * sizeof(V)));
    }
#endif
  }

  template <typename Op>
  __device__ __forceinline__ V receive(V v, int parity, Op op) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (csize_ > 1) {
      using namespace push_detail;
      const uint32_t bar = smem(&s_.full[parity]);
      const uint32_t phase = (phases_ >> parity) & 1u;
      while (!try_wait(bar, phase)) {
      }
      phases_ ^= 1u << parity;
      // Unrolled to the largest cluster, each term predicated: a loop over the runtime
      // csize compiled to ~90 instructions of unrolled-by-16 loops a reduction, on every
      // row's critical path (SASS of forward_walk, sm_90).
      V acc = s_.value[parity][0];
#pragma unroll
      for (int r = 1; r < kMaxCluster; ++r)
        if (r < csize_) acc = op(acc, s_.value[parity][r]);
      return acc;
    }
#endif
    return v;
  }

  // Called by every thread before the CTA exits: completes the cluster barrier
  // arrived on at construction where no reduction waited on it (a row group of
  // a persistent walk with no rows).
  __device__ __forceinline__ void finish() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (csize_ > 1 && !ready_) {
      asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
      ready_ = true;
    }
#endif
  }

 private:
  PushSlots<V>& s_;
  int csize_, rank_;
  uint32_t phases_ = 0;  // bit p: the phase parity of full[p]'s next reduction
  bool ready_ = false;
};

}  // namespace xpu::cuda
