// The caching pool: segments from the upstream, allocation and free on top of
// the free lists (free_list.cc) and the cross-stream rule (stream_order.cc),
// limits, out of memory and statistics.
#include "xpuruntime/memory/pool.h"

#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "core/memory/block.h"
#include "core/memory/free_list.h"
#include "core/memory/stream_order.h"

namespace xpu::memory {
namespace {

using detail::Block;
using detail::kAnyStream;
using detail::round_up;
using detail::Segment;

// The largest request any pool considers; beyond it no device has the memory.
constexpr size_t kMaxRequest = size_t(1) << 62;

std::string device_string(Device d) { return str_cat(device_kind_name(d.kind), ':', d.index); }

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
  return buf;
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
  detail::FreeLists free;
  detail::StreamOrder order;
  std::map<char*, Segment*> segments;        // by base address
  std::unordered_map<char*, Block*> live;    // allocated blocks by pointer
  PoolStats st;
  size_t limit = 0;

  explicit Impl(std::unique_ptr<UpstreamResource> u)
      : upstream(std::move(u)), free(*upstream), order(*upstream, free) {}

  // Allocated blocks plus frees whose stream work is pending. It only grows
  // when an allocation does, so its peak is taken there.
  int64_t active_now() const { return st.allocated.current + free.pending_bytes(); }
  void note_active() {
    st.active.current = active_now();
    if (st.active.current > st.active.peak) st.active.peak = st.active.current;
  }

  bool over_limit(size_t seg_size) const {
    return limit && static_cast<size_t>(st.reserved.current) + seg_size > limit;
  }

  Status grow(size_t seg_size, bool small, Block** out) {
    *out = nullptr;
    if (over_limit(seg_size)) return Error(StatusCode::kOutOfMemory, "limit");
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
    free.insert(b);
    *out = b;
    return Status::Ok();
  }

  void release_free_segments() {
    for (auto it = segments.begin(); it != segments.end();) {
      Segment* seg = it->second;
      Block* b = seg->head;
      if (b->free && !b->next && !b->pending()) {
        free.erase(b);
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

  static size_t standard_segment(size_t size, bool small) {
    return small ? kSmallSegmentSize : size <= kOwnSegmentAbove ? kLargeSegmentSize : round_up(size, kLargeRounding);
  }
  // Under a limit a request may still fit in a tight segment of its own.
  void tighten(size_t* seg_size, size_t size) const {
    if (over_limit(*seg_size) && !over_limit(size)) *seg_size = size;
  }

  Status allocate(size_t bytes, void* stream_ptr, void** out) {
    *out = nullptr;
    const uintptr_t stream = reinterpret_cast<uintptr_t>(stream_ptr);
    if (bytes > kMaxRequest) return oom(bytes, bytes, "the request exceeds any device's memory");
    const size_t size = round_up(bytes == 0 ? 1 : bytes, kMinBlockSize);
    const bool small = size <= kSmallRequestMax;
    order.poll();
    Block* b = free.best_fit(small, stream, size);
    if (!b && order.materialize_lazy(stream, false)) {
      // Frees on other streams become visible: those whose work is already done are reusable.
      order.poll();
      b = free.best_fit(small, stream, size);
    }
    if (b) {
      ++st.cache_hits;
    } else {
      ++st.cache_misses;
      size_t seg_size = standard_segment(size, small);
      tighten(&seg_size, size);
      Status s = grow(seg_size, small, &b);
      if (!s.ok() && s.code() == StatusCode::kOutOfMemory) {
        // Wait for pending frees, return wholly free segments, retry once.
        order.process_events(true);
        b = free.best_fit(small, stream, size);
        if (!b) {
          release_free_segments();
          tighten(&seg_size, size);
          s = grow(seg_size, small, &b);
        }
      }
      if (!b) {
        if (s.code() != StatusCode::kOutOfMemory) return s;
        return oom(bytes, size, s.message() == "limit" ? "" : s.message());
      }
    }
    free.take(b, size);  // the front of b; a large enough remainder stays free
    b->free = false;
    b->stream = stream;
    b->requested = bytes;
    live.emplace(b->ptr, b);
    st.requested.add(static_cast<int64_t>(bytes));
    st.allocated.add(static_cast<int64_t>(b->size));
    note_active();
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
      return InvalidArgument("free: pointer 0x", hex(ptr), " was not allocated by the ",
                             device_string(upstream->device()), " pool (or was already freed)");
    Block* b = it->second;
    live.erase(it);
    st.requested.add(-static_cast<int64_t>(b->requested));
    st.allocated.add(-static_cast<int64_t>(b->size));
    ++st.free_count;
    order.bind_freed(b, reinterpret_cast<uintptr_t>(stream_ptr));
    free.insert(b);
    free.coalesce(b);
    note_active();
    return Status::Ok();
  }

  void destroy_all() {
    order.release_all_events();
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
  impl_->order.retire(reinterpret_cast<uintptr_t>(stream), impl_->live);
}

void CachingPool::empty_cache() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->order.process_events(true);
  impl_->release_free_segments();
}

void CachingPool::set_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->limit = bytes;
}

PoolStats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  PoolStats s = impl_->st;
  s.active.current = impl_->active_now();
  s.free_blocks = impl_->free.count();
  s.limit = impl_->limit;
  // Frees still bound to their stream: waiting on an event, or lazy (no event needed yet).
  s.pending_events = static_cast<int64_t>(impl_->free.evented().size() + impl_->free.lazy().size());
  return s;
}

void CachingPool::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  PoolStats& s = impl_->st;
  s.active.current = impl_->active_now();
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

}  // namespace xpu::memory
