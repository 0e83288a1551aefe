// The pool's bookkeeping records: a segment is one upstream allocation, split
// into blocks that are either handed out or free. Internal to ffi/core/memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>

namespace xpu::memory::detail {

// The "stream" of a free block that is reusable on every stream.
inline constexpr uintptr_t kAnyStream = ~uintptr_t(0);

struct Segment;

struct Block {
  char* ptr = nullptr;
  size_t size = 0;
  Segment* segment = nullptr;
  Block* prev = nullptr;  // neighbours inside the segment, by address
  Block* next = nullptr;
  bool free = false;
  // Free blocks: the stream they were freed on (reusable there at once), or
  // kAnyStream once that stream's work before the free is known to be done.
  // Allocated blocks: the stream they were allocated on.
  uintptr_t stream = 0;
  // A free block on a stream is "lazy" until another stream wants memory: only
  // then is an event recorded on its stream (later than the free, so waiting
  // for it is never too early). Same-stream reuse, the common case, thus costs
  // no CUDA call at all.
  bool lazy = false;
  void* event = nullptr;    // free, stream != kAnyStream, not lazy: the event after the free
  uint64_t event_seq = 0;   // record order (a later event on a stream implies earlier ones)
  size_t requested = 0;
  bool stream_retired = false;  // allocated block whose stream was destroyed (retire_stream)

  // Bound to a stream and waiting for its work (an event, or lazy: none recorded yet).
  bool pending() const { return event != nullptr || lazy; }
};

struct Segment {
  char* base = nullptr;
  size_t size = 0;
  bool small = false;
  Block* head = nullptr;
};

// Best fit: by size, then by address.
struct BlockLess {
  bool operator()(const Block* a, const Block* b) const {
    if (a->size != b->size) return a->size < b->size;
    return std::less<char*>()(a->ptr, b->ptr);
  }
};
using FreeSet = std::set<Block*, BlockLess>;

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

}  // namespace xpu::memory::detail
