// The pool's cross-stream rule (docs/runtime.md): a block freed on stream A is
// reusable at once on A, and on other streams only after A's work queued before
// the free is done. Events are recorded lazily (only when another stream wants
// memory) and polled, never waited on, except when the pool runs out of memory
// or empties its cache. Internal to ffi/core/memory; the pool's mutex guards it.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/memory/block.h"
#include "core/memory/free_list.h"
#include "xpuruntime/memory/resource.h"

namespace xpu::memory::detail {

class StreamOrder {
 public:
  StreamOrder(UpstreamResource& upstream, FreeLists& free) : upstream_(upstream), free_(free) {}

  // Binds a block being freed: to `stream` (lazy) when work may still be
  // queued on it, else to every stream. (Inline, as poll: on every pair's path.)
  void bind_freed(Block* b, uintptr_t stream) {
    const bool dead_stream = b->stream_retired && stream == b->stream;
    b->stream_retired = false;
    // Dead stream: its work finished at retirement. Unordered upstream: no work can be pending.
    const bool lazy = !dead_stream && upstream_.stream_ordered();
    b->free = true;
    b->requested = 0;
    b->stream = lazy ? stream : kAnyStream;
    b->lazy = lazy;
    b->event = nullptr;
    b->event_seq = ++next_seq_;
  }
  // Promotes the free blocks whose event is done (process_events without waiting).
  void poll() {
    if (!free_.evented().empty()) process_events(false);
  }

  // Records the events lazy blocks were spared at free time (all of them, or
  // those of streams other than `except`). True when any was recorded.
  bool materialize_lazy(uintptr_t except, bool all);
  // Promotes every free block whose event is done (all of them when `wait`,
  // lazy ones included: they get their event first).
  void process_events(bool wait);
  // `stream` is about to be destroyed and its work is finished: blocks
  // allocated on it (in `live`) are later freed without an event on it; its
  // frees become reusable on every stream.
  void retire(uintptr_t stream, const std::unordered_map<char*, Block*>& live);

  // Teardown: returns every outstanding event.
  void release_all_events();

 private:
  // Its stream's work before the free is done: reusable on every stream.
  void promote(Block* b);
  void promote_and_coalesce(const std::vector<Block*>& done);

  UpstreamResource& upstream_;
  FreeLists& free_;
  uint64_t next_seq_ = 0;
};

}  // namespace xpu::memory::detail
