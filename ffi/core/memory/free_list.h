// The pool's free blocks: kept per (small/large, stream) plus one list of blocks
// reusable on every stream; best-fit lookup, splitting and coalescing with free
// neighbours. Internal to ffi/core/memory; the pool's mutex guards every call.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/memory/block.h"
#include "xpuruntime/memory/pool.h"
#include "xpuruntime/memory/resource.h"

namespace xpu::memory::detail {

class FreeLists {
 public:
  // Events of merged blocks go back to `upstream`.
  explicit FreeLists(UpstreamResource& upstream) : upstream_(upstream) {}

  // insert, erase, best_fit and take are on every allocation's path: defined
  // here so that the pool's calls inline (out of line: ~10% more instructions
  // per allocate+free pair).
  void insert(Block* b) {
    set_of(b).insert(b);
    ++count_;
    if (b->event) evented_.insert(b);
    if (b->lazy) lazy_.insert(b);
    if (b->pending()) pending_bytes_ += static_cast<int64_t>(b->size);
  }
  void erase(Block* b) {
    set_of(b).erase(b);
    --count_;
    if (b->event) evented_.erase(b);
    if (b->lazy) lazy_.erase(b);
    if (b->pending()) pending_bytes_ -= static_cast<int64_t>(b->size);
  }

  // The smallest free block of at least `size` bytes reusable on `stream`: one
  // freed on `stream` itself or one reusable everywhere; nullptr when none.
  Block* best_fit(bool small, uintptr_t stream, size_t size) {
    Block key;
    key.size = size;
    Block* best = nullptr;
    for (uintptr_t s : {stream, kAnyStream}) {
      auto it = sets_.find({small, s});
      if (it == sets_.end()) continue;
      auto f = it->second.lower_bound(&key);
      if (f != it->second.end() && (!best || (*f)->size < best->size)) best = *f;
    }
    return best;
  }

  // Takes `b` (free) off the lists for an allocation of `size` bytes; a large
  // enough remainder (>= 512 B for small blocks, > 1 MiB for large ones) is
  // split off and stays free with b's stream binding and event.
  void take(Block* b, size_t size) {
    erase(b);
    const size_t remainder = b->size - size;
    const bool split = b->segment->small ? remainder >= kMinBlockSize : remainder > kSmallRequestMax;
    if (split) {
      auto* rest = new Block;
      rest->ptr = b->ptr + size;
      rest->size = remainder;
      rest->segment = b->segment;
      rest->prev = b;
      rest->next = b->next;
      if (b->next) b->next->prev = rest;
      b->next = rest;
      b->size = size;
      rest->free = true;
      rest->stream = b->stream;
      rest->lazy = b->lazy;
      rest->event = b->event;  // the remainder keeps the pending free's event
      rest->event_seq = b->event_seq;
      b->event = nullptr;
      insert(rest);
    } else if (b->event) {
      upstream_.release_event(b->event);
      b->event = nullptr;
    }
    b->lazy = false;
  }

  // Merges `b` with free neighbours reusable on the same streams (both on every
  // stream, or both pending on one stream: the later event, which implies the
  // earlier, is kept). Blocks merged away are erased from `track` if given.
  Block* coalesce(Block* b, std::unordered_set<Block*>* track = nullptr);

  // Free blocks bound to `stream` (for retiring it).
  std::vector<Block*> bound_to(uintptr_t stream) const;

  const std::unordered_set<Block*>& evented() const { return evented_; }  // waiting for an event
  const std::unordered_set<Block*>& lazy() const { return lazy_; }        // bound, no event yet
  int64_t count() const { return count_; }
  int64_t pending_bytes() const { return pending_bytes_; }  // bytes of evented and lazy blocks
  void clear_pending() {  // teardown: the caller releases the events
    evented_.clear();
    lazy_.clear();
  }

 private:
  FreeSet& set_of(const Block* b) { return sets_[{b->segment->small, b->stream}]; }
  Block* merge(Block* a, Block* b, std::unordered_set<Block*>* track);

  UpstreamResource& upstream_;
  std::map<std::pair<bool, uintptr_t>, FreeSet> sets_;  // (small, stream)
  std::unordered_set<Block*> evented_;
  std::unordered_set<Block*> lazy_;
  int64_t count_ = 0;
  int64_t pending_bytes_ = 0;
};

}  // namespace xpu::memory::detail
