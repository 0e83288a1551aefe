#include "xpuruntime/memory/pool.h"

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "xpuruntime/runtime.h"

namespace xpu::memory {
namespace {

constexpr uintptr_t kAnyStream = ~uintptr_t(0);

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
};

struct Segment {
  char* base = nullptr;
  size_t size = 0;
  bool small = false;
  Block* head = nullptr;
};

struct BlockLess {
  bool operator()(const Block* a, const Block* b) const {
    if (a->size != b->size) return a->size < b->size;
    return std::less<char*>()(a->ptr, b->ptr);
  }
};
using FreeSet = std::set<Block*, BlockLess>;

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

std::string device_string(Device d) {
  return str_cat(device_kind_name(d.kind), ':', d.index);
}

OomInfo& last_oom() {
  thread_local OomInfo info;
  return info;
}

}  // namespace

OomInfo take_last_oom() {
  OomInfo out = std::move(last_oom());
  last_oom() = OomInfo{};
  return out;
}

struct CachingPool::Impl {
  std::unique_ptr<UpstreamResource> upstream;
  mutable std::mutex mu;
  std::map<char*, Segment*> segments;                        // by base address
  std::map<std::pair<bool, uintptr_t>, FreeSet> free_sets;   // (small, stream)
  std::unordered_set<Block*> pending;                        // free blocks waiting for their event
  std::unordered_set<Block*> lazy_blocks;                    // free blocks bound to a stream, no event yet
  std::unordered_map<char*, Block*> live;                    // allocated blocks by pointer
  PoolStats st;
  int64_t pending_bytes = 0;
  uint64_t next_seq = 0;
  size_t limit = 0;

  explicit Impl(std::unique_ptr<UpstreamResource> u) : upstream(std::move(u)) {}

  void update_active() {
    st.active.current = st.allocated.current + pending_bytes;
    if (st.active.current > st.active.peak) st.active.peak = st.active.current;
  }

  FreeSet& set_of(const Block* b) { return free_sets[{b->segment->small, b->stream}]; }

  void insert_free(Block* b) {
    set_of(b).insert(b);
    ++st.free_blocks;
    if (b->event) pending.insert(b);
    if (b->lazy) lazy_blocks.insert(b);
    if (b->event || b->lazy) pending_bytes += static_cast<int64_t>(b->size);
  }
  void erase_free(Block* b) {
    set_of(b).erase(b);
    --st.free_blocks;
    if (b->event) pending.erase(b);
    if (b->lazy) lazy_blocks.erase(b);
    if (b->event || b->lazy) pending_bytes -= static_cast<int64_t>(b->size);
  }

  // Free neighbours merge when they are reusable on the same streams: both on
  // every stream, or both pending on one stream (then the later event, which
  // implies the earlier, is kept). A pending block merges with its "any"
  // neighbours once its event is done (process_events).
  static bool compatible(const Block* a, const Block* b) { return a->stream == b->stream; }

  // a->next == b, both free and compatible. Keeps a, deletes b.
  Block* merge(Block* a, Block* b, std::unordered_set<Block*>* track) {
    erase_free(a);
    erase_free(b);
    const uintptr_t stream = a->stream;
    // A lazy part is freed later than any event of the other part: the merged
    // block is lazy, and a future event covers both.
    const bool lazy = a->lazy || b->lazy;
    void* event = nullptr;
    uint64_t seq = 0;
    for (Block* x : {a, b}) {
      if (!x->event) continue;
      if (lazy) {
        upstream->release_event(x->event);
        continue;
      }
      if (!event || x->event_seq > seq) {
        if (event) upstream->release_event(event);
        event = x->event;
        seq = x->event_seq;
      } else {
        upstream->release_event(x->event);
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
    insert_free(a);
    return a;
  }

  Block* coalesce(Block* b, std::unordered_set<Block*>* track = nullptr) {
    if (b->prev && b->prev->free && compatible(b->prev, b)) b = merge(b->prev, b, track);
    if (b->next && b->next->free && compatible(b, b->next)) b = merge(b, b->next, track);
    return b;
  }

  void promote(Block* b) {  // its stream's work before the free is done: reusable on every stream
    erase_free(b);
    if (b->event) upstream->release_event(b->event);
    b->event = nullptr;
    b->lazy = false;
    b->stream = kAnyStream;
    insert_free(b);
  }

  void promote_and_coalesce(const std::vector<Block*>& done) {
    std::unordered_set<Block*> track(done.begin(), done.end());
    for (Block* b : done) promote(b);
    while (!track.empty()) {
      Block* b = *track.begin();
      track.erase(track.begin());
      coalesce(b, &track);
    }
    update_active();
  }

  // Records the events lazy blocks were spared at free time (all of them, or
  // those of streams other than `except`). True when any was recorded.
  bool materialize_lazy(uintptr_t except, bool all) {
    std::vector<Block*> lazy;
    for (Block* b : lazy_blocks)
      if (all || b->stream != except) lazy.push_back(b);
    std::vector<Block*> unrecordable;
    for (Block* b : lazy) {
      void* event = nullptr;
      if (upstream->record_event(reinterpret_cast<void*>(b->stream), &event).ok() && event) {
        erase_free(b);  // same stream's free set, now waiting on the event
        b->lazy = false;
        b->event = event;
        b->event_seq = ++next_seq;
        insert_free(b);
      } else {
        upstream->synchronize_stream(reinterpret_cast<void*>(b->stream));
        unrecordable.push_back(b);  // its stream is idle now
      }
    }
    if (!unrecordable.empty()) promote_and_coalesce(unrecordable);
    return !lazy.empty();
  }

  // Promotes every free block whose event is done (all of them when `wait`,
  // lazy ones included: they get their event first).
  void process_events(bool wait) {
    if (wait && !lazy_blocks.empty()) materialize_lazy(0, true);
    if (pending.empty()) return;
    std::vector<Block*> done;
    for (Block* b : pending) {
      if (wait) upstream->wait_event(b->event);
      if (wait || upstream->event_done(b->event)) done.push_back(b);
    }
    if (!done.empty()) promote_and_coalesce(done);
  }

  Block* best_fit(bool small, uintptr_t stream, size_t size) {
    Block key;
    key.size = size;
    Block* best = nullptr;
    for (uintptr_t s : {stream, kAnyStream}) {
      auto it = free_sets.find({small, s});
      if (it == free_sets.end()) continue;
      auto f = it->second.lower_bound(&key);
      if (f != it->second.end() && (!best || (*f)->size < best->size)) best = *f;
    }
    return best;
  }

  Status grow(size_t seg_size, bool small, Block** out) {
    *out = nullptr;
    if (limit && static_cast<size_t>(st.reserved.current) + seg_size > limit)
      return Error(StatusCode::kOutOfMemory, "limit");
    void* p = nullptr;
    XPU_RETURN_IF_ERROR(upstream->allocate(seg_size, &p));
    auto* seg = new Segment{static_cast<char*>(p), seg_size, small, nullptr};
    auto* b = new Block;
    b->ptr = seg->base;
    b->size = seg_size;
    b->segment = seg;
    b->free = true;
    b->stream = kAnyStream;
    seg->head = b;
    segments[seg->base] = seg;
    st.reserved.add(static_cast<int64_t>(seg_size));
    ++st.upstream_allocs;
    ++st.segments;
    insert_free(b);
    *out = b;
    return Status::Ok();
  }

  void release_free_segments() {
    for (auto it = segments.begin(); it != segments.end();) {
      Segment* seg = it->second;
      Block* b = seg->head;
      if (b->free && !b->next && !b->event && !b->lazy) {
        erase_free(b);
        upstream->deallocate(seg->base, seg->size);
        st.reserved.add(-static_cast<int64_t>(seg->size));
        ++st.upstream_frees;
        --st.segments;
        delete b;
        delete seg;
        it = segments.erase(it);
      } else {
        ++it;
      }
    }
  }

  Status allocate(size_t bytes, void* stream_ptr, void** out) {
    *out = nullptr;
    const uintptr_t stream = reinterpret_cast<uintptr_t>(stream_ptr);
    if (bytes > (size_t(1) << 62))
      return oom(bytes, bytes, "the request exceeds any device's memory");
    const size_t size = round_up(bytes == 0 ? 1 : bytes, kMinBlockSize);
    const bool small = size <= kSmallRequestMax;
    process_events(false);
    Block* b = best_fit(small, stream, size);
    if (!b && materialize_lazy(stream, false)) {
      // Frees on other streams become visible: those whose work is already done are reusable.
      process_events(false);
      b = best_fit(small, stream, size);
    }
    if (b) {
      ++st.cache_hits;
    } else {
      ++st.cache_misses;
      size_t seg_size = small ? kSmallSegmentSize
                              : size <= kOwnSegmentAbove ? kLargeSegmentSize : round_up(size, kLargeRounding);
      // Under a limit a request may still fit in a tight segment of its own.
      if (limit && static_cast<size_t>(st.reserved.current) + seg_size > limit &&
          static_cast<size_t>(st.reserved.current) + size <= limit)
        seg_size = size;
      Status s = grow(seg_size, small, &b);
      if (!s.ok() && s.code() == StatusCode::kOutOfMemory) {
        // Wait for pending frees, return wholly free segments, retry once.
        process_events(true);
        b = best_fit(small, stream, size);
        if (!b) {
          release_free_segments();
          if (limit && static_cast<size_t>(st.reserved.current) + seg_size > limit &&
              static_cast<size_t>(st.reserved.current) + size <= limit)
            seg_size = size;
          s = grow(seg_size, small, &b);
        }
      }
      if (!b) {
        if (s.code() != StatusCode::kOutOfMemory) return s;
        return oom(bytes, size, s.message() == "limit" ? "" : s.message());
      }
    }
    // Take the front of b; a large enough remainder stays free.
    erase_free(b);
    const size_t remainder = b->size - size;
    const bool split = small ? remainder >= kMinBlockSize : remainder > kSmallRequestMax;
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
      insert_free(rest);
    } else if (b->event) {
      upstream->release_event(b->event);
      b->event = nullptr;
    }
    b->free = false;
    b->lazy = false;
    b->stream = stream;
    b->requested = bytes;
    live[b->ptr] = b;
    st.requested.add(static_cast<int64_t>(bytes));
    st.allocated.add(static_cast<int64_t>(b->size));
    update_active();
    ++st.alloc_count;
    *out = b->ptr;
    return Status::Ok();
  }

  Status oom(size_t bytes, size_t rounded, const std::string& upstream_message) {
    ++st.oom_count;
    const Device d = upstream->device();
    const size_t device_free = upstream->device_free_bytes();
    std::string msg = str_cat("out of memory on ", device_string(d), ": tried to allocate ", bytes,
                              " bytes (", rounded, " rounded); ", st.allocated.current,
                              " bytes allocated, ", st.reserved.current, " bytes reserved by xpuruntime, ",
                              device_free, " bytes free on the device");
    if (limit) msg += str_cat(", pool limit ", limit, " bytes");
    if (!upstream_message.empty()) msg += str_cat(" (", upstream_message, ")");
    OomInfo& info = last_oom();
    info.valid = true;
    info.device = d;
    info.requested = bytes;
    info.rounded = rounded;
    info.allocated = static_cast<size_t>(st.allocated.current);
    info.reserved = static_cast<size_t>(st.reserved.current);
    info.device_free = device_free;
    info.limit = limit;
    info.message = msg;
    return Status(StatusCode::kOutOfMemory, std::move(msg));
  }

  Status deallocate(void* ptr, void* stream_ptr) {
    auto it = live.find(static_cast<char*>(ptr));
    if (it == live.end())
      return InvalidArgument("free: pointer 0x", str_hex(ptr), " was not allocated by the ",
                             device_string(upstream->device()), " pool (or was already freed)");
    Block* b = it->second;
    live.erase(it);
    st.requested.add(-static_cast<int64_t>(b->requested));
    st.allocated.add(-static_cast<int64_t>(b->size));
    ++st.free_count;
    const bool dead_stream = b->stream_retired && reinterpret_cast<uintptr_t>(stream_ptr) == b->stream;
    b->stream_retired = false;
    // Dead stream: its work finished at retirement. Unordered upstream: no work can be pending.
    const bool lazy = !dead_stream && upstream->stream_ordered();
    b->free = true;
    b->requested = 0;
    b->stream = lazy ? reinterpret_cast<uintptr_t>(stream_ptr) : kAnyStream;
    b->lazy = lazy;
    b->event = nullptr;
    b->event_seq = ++next_seq;
    insert_free(b);
    coalesce(b);
    update_active();
    return Status::Ok();
  }

  void retire_stream(uintptr_t stream) {
    for (auto& [ptr, b] : live)
      if (b->stream == stream) b->stream_retired = true;
    // Its frees (lazy or evented) are done: the caller synchronized the stream.
    std::vector<Block*> done;
    for (bool small : {true, false}) {
      auto it = free_sets.find({small, stream});
      if (it != free_sets.end()) done.insert(done.end(), it->second.begin(), it->second.end());
    }
    if (!done.empty()) promote_and_coalesce(done);
  }

  static std::string str_hex(void* p) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
    return buf;
  }

  void destroy_all() {
    for (Block* b : pending) upstream->release_event(b->event);
    pending.clear();
    lazy_blocks.clear();
    for (auto& [base, seg] : segments) {
      for (Block* b = seg->head; b;) {
        Block* n = b->next;
        delete b;
        b = n;
      }
      upstream->deallocate(seg->base, seg->size);
      delete seg;
    }
    segments.clear();
  }
};

CachingPool::CachingPool(std::unique_ptr<UpstreamResource> upstream)
    : impl_(std::make_unique<Impl>(std::move(upstream))) {}

CachingPool::~CachingPool() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->destroy_all();
}

Status CachingPool::allocate(size_t bytes, void* stream, void** out) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->allocate(bytes, stream, out);
}

Status CachingPool::deallocate(void* ptr, void* stream) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->deallocate(ptr, stream);
}

void CachingPool::retire_stream(void* stream) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->retire_stream(reinterpret_cast<uintptr_t>(stream));
}

void CachingPool::empty_cache() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->process_events(true);
  impl_->release_free_segments();
}

void CachingPool::set_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->limit = bytes;
}

PoolStats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  PoolStats s = impl_->st;
  s.limit = impl_->limit;
  // Frees still bound to their stream: waiting on an event, or lazy (no event needed yet).
  s.pending_events = static_cast<int64_t>(impl_->pending.size() + impl_->lazy_blocks.size());
  return s;
}

void CachingPool::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  PoolStats& s = impl_->st;
  for (Counter* c : {&s.requested, &s.allocated, &s.active, &s.reserved}) c->peak = c->current;
}

std::vector<SegmentInfo> CachingPool::snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<SegmentInfo> out;
  for (const auto& [base, seg] : impl_->segments) {
    SegmentInfo si;
    si.ptr = reinterpret_cast<uintptr_t>(seg->base);
    si.size = seg->size;
    si.small = seg->small;
    for (Block* b = seg->head; b; b = b->next)
      si.blocks.push_back({reinterpret_cast<uintptr_t>(b->ptr), b->size, b->free,
                           b->free && b->stream == kAnyStream, b->stream == kAnyStream ? 0 : b->stream});
    out.push_back(std::move(si));
  }
  return out;
}

Device CachingPool::device() const { return impl_->upstream->device(); }
UpstreamResource& CachingPool::upstream() { return *impl_->upstream; }

// ---- per-device pools --------------------------------------------------------------------------

namespace {
std::mutex g_pools_mu;
CachingPool* g_cpu_pool = nullptr;
std::unordered_map<int, CachingPool*> g_cuda_pools;
CachingPool* g_pinned_pool = nullptr;
bool g_pinned_tried = false;
}  // namespace

Status device_pool(Device device, CachingPool** out) {
  *out = nullptr;
  std::lock_guard<std::mutex> lock(g_pools_mu);
  if (device.kind == DeviceKind::kCPU) {
    if (device.index != 0)
      return InvalidArgument("invalid CPU device index ", device.index, " (only cpu:0 exists)");
    if (!g_cpu_pool) g_cpu_pool = new CachingPool(make_host_resource());
    *out = g_cpu_pool;
    return Status::Ok();
  }
  auto it = g_cuda_pools.find(device.index);
  if (it != g_cuda_pools.end()) {
    *out = it->second;
    return Status::Ok();
  }
  Status s;
  auto upstream = make_cuda_resource(device.index, &s);
  if (!upstream) return s;
  *out = g_cuda_pools[device.index] = new CachingPool(std::move(upstream));
  return Status::Ok();
}

void retire_stream_everywhere(void* stream) {
  std::vector<CachingPool*> pools;
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    for (auto& [index, pool] : g_cuda_pools) pools.push_back(pool);
    if (g_pinned_pool) pools.push_back(g_pinned_pool);
  }
  if (pools.empty()) return;
  pools.front()->upstream().synchronize_stream(stream);
  for (CachingPool* pool : pools) pool->retire_stream(stream);
}

Status pinned_pool(CachingPool** out, bool* is_pinned) {
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    if (!g_pinned_tried) {
      g_pinned_tried = true;
      Status s;
      auto upstream = make_pinned_host_resource(&s);
      if (upstream) g_pinned_pool = new CachingPool(std::move(upstream));
    }
    if (g_pinned_pool) {
      *out = g_pinned_pool;
      *is_pinned = true;
      return Status::Ok();
    }
  }
  *is_pinned = false;
  return device_pool({DeviceKind::kCPU, 0}, out);
}

}  // namespace xpu::memory
