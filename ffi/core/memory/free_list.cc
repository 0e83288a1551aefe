#include "core/memory/free_list.h"

#include <vector>

namespace xpu::memory::detail {

// Free neighbours are compatible when reusable on the same streams. A pending
// block merges with its "any" neighbours once its event is done (StreamOrder).
static bool compatible(const Block* a, const Block* b) { return a->stream == b->stream; }

// a->next == b, both free and compatible. Keeps a, deletes b.
Block* FreeLists::merge(Block* a, Block* b, std::unordered_set<Block*>* track) {
  erase(a);
  erase(b);
  const uintptr_t stream = a->stream;
  // A lazy part is freed later than any event of the other part: the merged
  // block is lazy, and a future event covers both.
  const bool lazy = a->lazy || b->lazy;
  void* event = nullptr;
  uint64_t seq = 0;
  for (Block* x : {a, b}) {
    if (!x->event) continue;
    if (lazy) {
      upstream_.release_event(x->event);
      continue;
    }
    if (!event || x->event_seq > seq) {
      if (event) upstream_.release_event(event);
      event = x->event;
      seq = x->event_seq;
    } else {
      upstream_.release_event(x->event);
    }
  }
  a->size += b->size;
  a->next = b->next;
  if (b->next) b->next->prev = a;
  a->stream = (event || lazy) ? stream : kAnyStream;
  a->lazy = lazy;
  a->event = event;
  a->event_seq = seq;
  if (track) track->erase(b);
  delete b;
  insert(a);
  return a;
}

Block* FreeLists::coalesce(Block* b, std::unordered_set<Block*>* track) {
  if (b->prev && b->prev->free && compatible(b->prev, b)) b = merge(b->prev, b, track);
  if (b->next && b->next->free && compatible(b, b->next)) b = merge(b, b->next, track);
  return b;
}

std::vector<Block*> FreeLists::bound_to(uintptr_t stream) const {
  std::vector<Block*> out;
  for (bool small : {true, false}) {
    auto it = sets_.find({small, stream});
    if (it != sets_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

}  // namespace xpu::memory::detail
