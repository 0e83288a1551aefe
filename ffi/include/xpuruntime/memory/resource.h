// Upstream memory resources: where a caching pool gets its segments from, and
// how it orders reuse against streams. Composable in the manner of RMM memory
// resources: a pool owns one upstream and never talks to the allocator itself.
#pragma once

#include <cstddef>
#include <memory>

#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::memory {

class UpstreamResource {
 public:
  virtual ~UpstreamResource() = default;

  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // Returns StatusCode::kOutOfMemory when the memory is not there.
  virtual Status allocate(size_t bytes, void** out) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;

  // Free and total bytes as the device reports them (for OOM messages and
  // Device objects); 0 when unknown.
  virtual size_t device_free_bytes() const { return 0; }
  virtual size_t device_total_bytes() const { return 0; }

  // ---- stream ordering ----
  // True when work on streams can still be running after a call returns (CUDA,
  // pinned memory, the manual-event test resource): frees then need events.
  virtual bool stream_ordered() const { return false; }
  // An event marks the end of the work queued on `stream` so far. A null event
  // means "nothing pending": the host resource returns null (its streams are
  // trivial; all work is done when a call returns).
  virtual Status record_event(void* stream, void** event) {
    (void)stream;
    *event = nullptr;
    return Status::Ok();
  }
  // True when the work before the event has finished (or the event is broken:
  // a failed query is treated as done so that memory is never lost).
  virtual bool event_done(void* event) { (void)event; return true; }
  // Blocks the host until the event is done.
  virtual void wait_event(void* event) { (void)event; }
  virtual void release_event(void* event) { (void)event; }
  // Blocks the host until `stream` is idle (fallback when recording fails).
  virtual void synchronize_stream(void* stream) { (void)stream; }
};

// 256-byte aligned host memory (the alignment cudaMalloc guarantees).
std::unique_ptr<UpstreamResource> make_host_resource();

// Host memory whose events stay pending until complete_all() is called: lets
// the CPU test suite exercise the pool's cross-stream rule without a GPU.
class ManualEventHostResource;
std::unique_ptr<UpstreamResource> make_manual_event_host_resource(ManualEventHostResource** handle);
void complete_all_events(ManualEventHostResource* r);
size_t pending_event_count(ManualEventHostResource* r);

// cudaMalloc / cudaFree on one device, with CUDA events for stream ordering.
// Returns null (and sets *status) in a build without CUDA or for a bad index.
std::unique_ptr<UpstreamResource> make_cuda_resource(int device_index, Status* status);

// Page-locked host memory (cudaHostAlloc) for asynchronous copies; null
// without CUDA or without a usable device.
std::unique_ptr<UpstreamResource> make_pinned_host_resource(Status* status);

}  // namespace xpu::memory
