#include "core/memory/stream_order.h"

#include <unordered_set>

namespace xpu::memory::detail {

void StreamOrder::promote(Block* b) {
  free_.erase(b);
  if (b->event) upstream_.release_event(b->event);
  b->event = nullptr;
  b->lazy = false;
  b->stream = kAnyStream;
  free_.insert(b);
}

void StreamOrder::promote_and_coalesce(const std::vector<Block*>& done) {
  std::unordered_set<Block*> track(done.begin(), done.end());
  for (Block* b : done) promote(b);
  while (!track.empty()) {
    Block* b = *track.begin();
    track.erase(track.begin());
    free_.coalesce(b, &track);
  }
}

bool StreamOrder::materialize_lazy(uintptr_t except, bool all) {
  std::vector<Block*> lazy;
  for (Block* b : free_.lazy())
    if (all || b->stream != except) lazy.push_back(b);
  std::vector<Block*> unrecordable;
  for (Block* b : lazy) {
    void* event = nullptr;
    if (upstream_.record_event(reinterpret_cast<void*>(b->stream), &event).ok() && event) {
      free_.erase(b);  // same stream's free set, now waiting on the event
      b->lazy = false;
      b->event = event;
      b->event_seq = ++next_seq_;
      free_.insert(b);
    } else {
      upstream_.synchronize_stream(reinterpret_cast<void*>(b->stream));
      unrecordable.push_back(b);  // its stream is idle now
    }
  }
  if (!unrecordable.empty()) promote_and_coalesce(unrecordable);
  return !lazy.empty();
}

void StreamOrder::process_events(bool wait) {
  if (wait && !free_.lazy().empty()) materialize_lazy(0, true);
  if (free_.evented().empty()) return;
  std::vector<Block*> done;
  for (Block* b : free_.evented()) {
    if (wait) upstream_.wait_event(b->event);
    if (wait || upstream_.event_done(b->event)) done.push_back(b);
  }
  if (!done.empty()) promote_and_coalesce(done);
}

void StreamOrder::retire(uintptr_t stream, const std::unordered_map<char*, Block*>& live) {
  for (const auto& [ptr, b] : live)
    if (b->stream == stream) b->stream_retired = true;
  // Its frees (lazy or evented) are done: the caller synchronized the stream.
  std::vector<Block*> done = free_.bound_to(stream);
  if (!done.empty()) promote_and_coalesce(done);
}

void StreamOrder::release_all_events() {
  for (Block* b : free_.evented()) upstream_.release_event(b->event);
  free_.clear_pending();
}

}  // namespace xpu::memory::detail
