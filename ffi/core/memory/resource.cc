#include "xpuruntime/memory/resource.h"

#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "core/cuda_error.h"
#include "xpuruntime/runtime.h"

namespace xpu::memory {
namespace {

constexpr size_t kHostAlignment = 256;

size_t host_page_bytes(int which) {
  const long pages = sysconf(which);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

class HostResource : public UpstreamResource {
 public:
  Device device() const override { return {DeviceKind::kCPU, 0}; }
  const char* name() const override { return "host"; }
  Status allocate(size_t bytes, void** out) override {
    *out = nullptr;
    if (bytes > (~size_t(0)) - kHostAlignment)
      return Error(StatusCode::kOutOfMemory, "host allocation of ", bytes, " bytes is too large");
    const size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    *out = std::aligned_alloc(kHostAlignment, rounded);
    if (!*out) return Error(StatusCode::kOutOfMemory, "out of host memory allocating ", bytes, " bytes");
    return Status::Ok();
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  size_t device_free_bytes() const override { return host_page_bytes(_SC_AVPHYS_PAGES); }
  size_t device_total_bytes() const override { return host_page_bytes(_SC_PHYS_PAGES); }
};

}  // namespace

// Events are heap tokens; each is pending until complete_all_events().
class ManualEventHostResource : public HostResource {
 public:
  const char* name() const override { return "host (manual events)"; }
  bool stream_ordered() const override { return true; }
  Status record_event(void*, void** event) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* token = new int(0);
    pending_.insert(token);
    *event = token;
    return Status::Ok();
  }
  bool event_done(void* event) override {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.count(event) == 0;
  }
  void wait_event(void* event) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(event);  // "waiting" completes the work
  }
  void release_event(void* event) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(event);
    delete static_cast<int*>(event);
  }
  void complete_all() {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
  }
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }

 private:
  std::mutex mu_;
  std::unordered_set<void*> pending_;
};

std::unique_ptr<UpstreamResource> make_host_resource() { return std::make_unique<HostResource>(); }

std::unique_ptr<UpstreamResource> make_manual_event_host_resource(ManualEventHostResource** handle) {
  auto r = std::make_unique<ManualEventHostResource>();
  if (handle) *handle = r.get();
  return r;
}
void complete_all_events(ManualEventHostResource* r) { r->complete_all(); }
size_t pending_event_count(ManualEventHostResource* r) { return r->pending(); }

#if XPURUNTIME_WITH_CUDA
namespace {

// The pool must not leave a CUDA error behind for an unrelated later check.
using detail::clear_cuda_error;

class CudaResource final : public UpstreamResource {
 public:
  explicit CudaResource(int index) : index_(index) {}
  ~CudaResource() override {
    // Process teardown may already have destroyed the context; errors are cleared.
    runtime::DeviceGuard guard(device());
    for (cudaEvent_t e : free_events_)
      if (cudaEventDestroy(e) != cudaSuccess) clear_cuda_error();
  }
  Device device() const override { return {DeviceKind::kCUDA, index_}; }
  const char* name() const override { return "cuda"; }
  bool stream_ordered() const override { return true; }

  Status allocate(size_t bytes, void** out) override {
    *out = nullptr;
    runtime::DeviceGuard guard(device());
    const cudaError_t err = cudaMalloc(out, bytes);
    if (err == cudaSuccess) return Status::Ok();
    clear_cuda_error();
    *out = nullptr;
    if (err == cudaErrorMemoryAllocation)
      return Error(StatusCode::kOutOfMemory, "cudaMalloc of ", bytes, " bytes failed on cuda:", index_);
    return Error(StatusCode::kInternal, "cudaMalloc of ", bytes, " bytes failed on cuda:", index_, ": ",
                 cudaGetErrorString(err));
  }
  void deallocate(void* ptr, size_t) override {
    runtime::DeviceGuard guard(device());
    if (cudaFree(ptr) != cudaSuccess) clear_cuda_error();
  }
  size_t device_free_bytes() const override {
    size_t free_b = 0, total = 0;
    runtime::DeviceGuard guard(device());
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
      clear_cuda_error();
      return 0;
    }
    return free_b;
  }
  size_t device_total_bytes() const override {
    size_t free_b = 0, total = 0;
    runtime::DeviceGuard guard(device());
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
      clear_cuda_error();
      return 0;
    }
    return total;
  }

  // Called with the owning pool's mutex held: free_events_ needs no lock of its own.
  Status record_event(void* stream, void** event) override {
    *event = nullptr;
    runtime::DeviceGuard guard(device());
    cudaEvent_t e = nullptr;
    if (!free_events_.empty()) {
      e = free_events_.back();
      free_events_.pop_back();
    } else {
      const cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
      if (err != cudaSuccess) {
        clear_cuda_error();
        return Error(StatusCode::kInternal, "cudaEventCreate failed on cuda:", index_, ": ",
                     cudaGetErrorString(err));
      }
    }
    const cudaError_t err = cudaEventRecord(e, static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) {
      clear_cuda_error();
      if (cudaEventDestroy(e) != cudaSuccess) clear_cuda_error();
      return Error(StatusCode::kInternal, "cudaEventRecord failed on cuda:", index_, ": ",
                   cudaGetErrorString(err));
    }
    *event = e;
    return Status::Ok();
  }
  bool event_done(void* event) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (err == cudaSuccess) return true;
    clear_cuda_error();
    return err != cudaErrorNotReady;  // a broken event never completes: treat as done
  }
  void wait_event(void* event) override {
    if (cudaEventSynchronize(static_cast<cudaEvent_t>(event)) != cudaSuccess) clear_cuda_error();
  }
  void release_event(void* event) override {
    free_events_.push_back(static_cast<cudaEvent_t>(event));
  }
  void synchronize_stream(void* stream) override {
    runtime::DeviceGuard guard(device());
    if (cudaStreamSynchronize(static_cast<cudaStream_t>(stream)) != cudaSuccess) clear_cuda_error();
  }

 private:
  int index_;
  std::vector<cudaEvent_t> free_events_;
};

// Page-locked host memory. Its streams are CUDA streams of any device: events
// are created on the current device and recording falls back to a stream
// synchronize when the stream lives elsewhere.
class PinnedHostResource final : public UpstreamResource {
 public:
  Device device() const override { return {DeviceKind::kCPU, 0}; }
  const char* name() const override { return "pinned host"; }
  bool stream_ordered() const override { return true; }
  Status allocate(size_t bytes, void** out) override {
    *out = nullptr;
    const cudaError_t err = cudaHostAlloc(out, bytes, cudaHostAllocPortable);
    if (err == cudaSuccess) return Status::Ok();
    clear_cuda_error();
    *out = nullptr;
    if (err == cudaErrorMemoryAllocation)
      return Error(StatusCode::kOutOfMemory, "cudaHostAlloc of ", bytes, " bytes failed");
    return Error(StatusCode::kInternal, "cudaHostAlloc of ", bytes, " bytes failed: ", cudaGetErrorString(err));
  }
  void deallocate(void* ptr, size_t) override {
    if (cudaFreeHost(ptr) != cudaSuccess) clear_cuda_error();
  }
  size_t device_free_bytes() const override { return host_page_bytes(_SC_AVPHYS_PAGES); }
  size_t device_total_bytes() const override { return host_page_bytes(_SC_PHYS_PAGES); }
  Status record_event(void* stream, void** event) override {
    *event = nullptr;
    if (stream == nullptr) return Status::Ok();  // host-side use only: nothing queued
    cudaEvent_t e = nullptr;
    cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    if (err != cudaSuccess) {
      clear_cuda_error();
      return Error(StatusCode::kInternal, "cudaEventCreate failed: ", cudaGetErrorString(err));
    }
    err = cudaEventRecord(e, static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) {
      clear_cuda_error();
      if (cudaEventDestroy(e) != cudaSuccess) clear_cuda_error();
      return Error(StatusCode::kInternal, "cudaEventRecord failed: ", cudaGetErrorString(err));
    }
    *event = e;
    return Status::Ok();
  }
  bool event_done(void* event) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (err == cudaSuccess) return true;
    clear_cuda_error();
    return err != cudaErrorNotReady;
  }
  void wait_event(void* event) override {
    if (cudaEventSynchronize(static_cast<cudaEvent_t>(event)) != cudaSuccess) clear_cuda_error();
  }
  void release_event(void* event) override {
    if (cudaEventDestroy(static_cast<cudaEvent_t>(event)) != cudaSuccess) clear_cuda_error();
  }
  void synchronize_stream(void* stream) override {
    if (cudaStreamSynchronize(static_cast<cudaStream_t>(stream)) != cudaSuccess) clear_cuda_error();
  }
};

}  // namespace

std::unique_ptr<UpstreamResource> make_cuda_resource(int device_index, Status* status) {
  const int n = runtime::cuda_device_count();
  if (device_index < 0 || device_index >= n) {
    *status = InvalidArgument("invalid CUDA device index ", device_index, " (", n, " CUDA device",
                              n == 1 ? "" : "s", " visible)");
    return nullptr;
  }
  *status = Status::Ok();
  return std::make_unique<CudaResource>(device_index);
}

std::unique_ptr<UpstreamResource> make_pinned_host_resource(Status* status) {
  if (runtime::cuda_device_count() == 0) {
    *status = Error(StatusCode::kUnimplemented, "pinned host memory needs a CUDA device");
    return nullptr;
  }
  *status = Status::Ok();
  return std::make_unique<PinnedHostResource>();
}

#else  // !XPURUNTIME_WITH_CUDA

std::unique_ptr<UpstreamResource> make_cuda_resource(int device_index, Status* status) {
  *status = InvalidArgument("invalid CUDA device index ", device_index,
                            " (this build of xpuruntime has no CUDA support)");
  return nullptr;
}
std::unique_ptr<UpstreamResource> make_pinned_host_resource(Status* status) {
  *status = Error(StatusCode::kUnimplemented, "this build of xpuruntime has no CUDA support");
  return nullptr;
}

#endif

}  // namespace xpu::memory
