// A caching, stream-ordered memory pool over any upstream resource; one per
// device serves xpuruntime's allocations (runtime::allocate, memory.allocate).
//
// Size classes: requests round up to 512 B. Requests of at most 1 MiB come
// from 2 MiB segments, requests up to 10 MiB from 20 MiB segments, larger ones
// get their own segment rounded up to 2 MiB. A cached block larger than the
// request is split; a freed block coalesces with free neighbours of its segment.
//
// Cross-stream rule: free(ptr, A) binds the block to A. It is reusable at once
// by allocations on A (their work is queued after A's). An allocation on
// another stream B takes it only once an event recorded on A (lazily, when B
// asks) is done (no false dependency is added to B; see docs/runtime.md).
// Blocks whose event is done belong to no stream. On out-of-memory the pool
// waits for pending events, returns every wholly free segment to the upstream
// and retries once.
//
// Files: free lists and coalescing (ffi/core/memory/free_list.cc), the
// cross-stream rule (stream_order.cc), this pool with limits, out of memory and
// statistics (pool.cc); per-device pools are in memory/device_pools.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xpuruntime/memory/resource.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::memory {

inline constexpr size_t kMinBlockSize = 512;
inline constexpr size_t kSmallRequestMax = size_t(1) << 20;   // 1 MiB
inline constexpr size_t kSmallSegmentSize = size_t(2) << 20;  // 2 MiB
inline constexpr size_t kLargeSegmentSize = size_t(20) << 20; // 20 MiB
inline constexpr size_t kOwnSegmentAbove = size_t(10) << 20;  // 10 MiB
inline constexpr size_t kLargeRounding = size_t(2) << 20;     // 2 MiB

struct Counter {
  int64_t current = 0;
  int64_t peak = 0;
  void add(int64_t delta) {
    current += delta;
    if (current > peak) peak = current;
  }
};

struct PoolStats {
  Counter requested;  // bytes asked for by live allocations
  Counter allocated;  // block bytes (rounded) of live allocations
  Counter active;     // allocated + freed blocks whose stream work is still pending
  Counter reserved;   // segment bytes held from the upstream
  int64_t alloc_count = 0;
  int64_t free_count = 0;
  int64_t cache_hits = 0;    // served from cached segments
  int64_t cache_misses = 0;  // needed a new segment
  int64_t oom_count = 0;
  int64_t upstream_allocs = 0;
  int64_t upstream_frees = 0;
  int64_t segments = 0;
  int64_t free_blocks = 0;
  int64_t pending_events = 0;
  size_t limit = 0;  // 0: none
};

struct BlockInfo {
  uintptr_t ptr = 0;
  size_t size = 0;
  bool free = false;
  bool any_stream = false;  // free and reusable on every stream
  uintptr_t stream = 0;
};

struct SegmentInfo {
  uintptr_t ptr = 0;
  size_t size = 0;
  bool small = false;
  std::vector<BlockInfo> blocks;
};

class CachingPool {
 public:
  explicit CachingPool(std::unique_ptr<UpstreamResource> upstream);
  ~CachingPool();  // returns every segment to the upstream
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  // Memory usable by work queued on `stream` after the call. bytes == 0 gives a
  // unique valid pointer (one minimum block).
  Status allocate(size_t bytes, void* stream, void** out);
  // `stream`: the stream whose queued work last uses the memory.
  // kInvalidArgument for a pointer this pool did not hand out (or double free).
  Status deallocate(void* ptr, void* stream);

  // `stream` is about to be destroyed and its work is finished (the caller
  // synchronized it): blocks allocated on it are later freed without an event
  // on it, and blocks freed on it become reusable on every stream. Without
  // this, freeing memory whose stream is gone would record on a dead handle.
  void retire_stream(void* stream);

  void empty_cache();  // returns wholly free segments (waits for their events)
  void set_limit(size_t bytes);  // 0: no limit; reserved bytes never exceed it
  PoolStats stats() const;
  void reset_peak_stats();
  std::vector<SegmentInfo> snapshot() const;

  Device device() const;
  UpstreamResource& upstream();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Facts about the calling thread's last out-of-memory failure of any pool;
// adapters attach them to their error (Python: OutOfMemoryError attributes).
struct OomInfo {
  bool valid = false;
  Device device;
  size_t requested = 0, rounded = 0, allocated = 0, reserved = 0, device_free = 0, limit = 0;
  std::string message;  // the Status message it belongs to
};
// Returns and clears the thread's record.
OomInfo take_last_oom();

}  // namespace xpu::memory
